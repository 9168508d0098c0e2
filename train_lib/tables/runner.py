"""`--mode=table` and `--mode=report`: reproduce a published table (configs/tables/).

`table` runs the table's experiments one after another, each seed into
`DIR/<slug>/seed<k>/` (train_lib/tables/runs.py), skipping finished runs (of the same
config) and resuming unfinished ones from their checkpoints, then writes the report (train_lib/
report.py). With `--config.table.print_commands=True` it runs nothing and prints
one launch command per experiment instead, for a cluster scheduler: each command is
this mode restricted to one row, so a job lands in the same place, skips and resumes
the same way and leaves the same marks. `report` writes the report from whatever has
finished.

The runs are in-process calls of `train_and_evaluate`, not subprocesses: on a laptop the
table's short runs would otherwise each pay the interpreter's start-up and the import
of JAX and TensorFlow (several seconds, a sizeable part of a one-minute run), and the
seeds of an experiment reuse the process's XLA compilation cache. A failing run (a
UserError, or any other exception, whose traceback is printed) is recorded in its
directory and the table goes on with the next; isolation for long GPU runs comes from
the printed commands, one process per experiment.
"""

import os
import shlex
import sys
import time
import traceback

import jax
import ml_collections

from train_lib.errors import USER_ERRORS, UserError
from train_lib.metrics_writer import info
from train_lib.tables import report, runs


def main(
  mode: str,
  table: ml_collections.ConfigDict,
  workdir: str | None,
  config_file: str,
  allow_config_change: bool = False,
) -> list[str]:
  """Dispatches `--mode=table|report`; returns the report's files (none if printing).

  Args:
    mode: 'table' or 'report'.
    table: a table config (configs/tables/*.py).
    workdir: the table's directory.
    config_file: the table config's path, as given to --config (for printed commands).
    allow_config_change: continue runs whose config differs (table mode).

  Raises:
    UserError: not a table config, no workdir, a bad row; after the report is written,
      if any experiment failed.
    train.Preempted: a signal stopped a run (after its checkpoint; no report).
  """
  if not runs.is_table(table):
    raise UserError(
      f'--mode={mode} needs a table config (configs/tables/*.py), e.g. '
      '--config=configs/tables/digits.py'
    )
  if mode not in ('table', 'report'):
    raise UserError(
      f'{config_file} is a table of experiments; run it with --mode=table '
      'or --mode=report (one experiment: --config=<its config file>)'
    )
  if not workdir:
    raise UserError(f"--mode={mode} needs --workdir, the directory of the table's runs")
  if mode == 'report':
    return report.write(table, workdir)
  if table.table.print_commands:
    for command in launch_commands(table, workdir, config_file, allow_config_change):
      print(command, flush=True)
    return []
  # A signal (train.Preempted) ends the table at once, without a report: the grace
  # period of a preempted job is short, and --mode=report writes one any time.
  failures = run_experiments(table, workdir, allow_config_change)
  paths = report.write(table, workdir)
  if failures:
    raise UserError(
      f'{len(failures)} run(s) failed ({"; ".join(failures)}); the others '
      f'are in {os.path.join(workdir, "table.md")}; fix the cause and run '
      'the same command again to retry them'
    )
  return paths


def _plan(table: ml_collections.ConfigDict):
  """[(row, seed, config)] of the selected runs; every config is loaded up front, so a
  bad row is found before hours are spent on the ones before it."""
  return [
    (row, seed, runs.experiment_config(table, row, seed))
    for row in runs.selected_rows(table)
    for seed in runs.selected_seeds(table, row)
  ]


def run_experiments(
  table: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False
) -> list[str]:
  """Runs every selected run that has not finished; returns the failures, one line each.

  Raises:
    UserError: a row's config does not load.
    train.Preempted: a signal stopped a run, after its checkpoint.
  """
  plan = _plan(table)
  failures, train = [], None
  for i, (row, seed, config) in enumerate(plan, 1):
    directory = runs.run_dir(workdir, row, seed)
    state = runs.run_state(workdir, row, seed)
    if state.status == 'done':
      if runs.same_config(directory, config):
        info(f'[{i}/{len(plan)}] {row.name}, seed {seed}: finished already ({directory})')
        continue
      # The table asks for something else now: train_and_evaluate extends the run
      # (e.g. more epochs) or refuses a different one, which is then recorded.
      if jax.process_index() == 0:
        runs.mark_unfinished(directory)
    if train is None:  # the first run to train: one compilation cache for the table's
      # runs, beside DIR as for a single run
      from train_lib import compilation, train

      compilation.configure(config, workdir)
    info(
      f'[{i}/{len(plan)}] {row.name}, seed {seed}: {row.config}'
      f'{":" + row.config_arg if row.config_arg else ""} -> {directory}'
    )
    start = time.time()
    try:
      metrics = train.train_and_evaluate(config, directory, allow_config_change)
    except train.Preempted:
      raise
    except Exception as e:
      if not isinstance(e, USER_ERRORS):  # a bug or a crash: keep its traceback visible
        traceback.print_exc()
      message = f'{type(e).__name__}: {e}' if not isinstance(e, USER_ERRORS) else str(e)
      if jax.process_index() == 0:
        runs.record_failure(directory, message)
      print(f'failed: {row.name}, seed {seed}: {message}', file=sys.stderr, flush=True)
      failures.append(f'{row.name} seed {seed}')
      continue
    finally:
      jax.clear_caches()  # the next run compiles its own steps; free these
    if jax.process_index() == 0:
      runs.record_result(directory, metrics, time.time() - start)
  return failures


def launch_commands(
  table: ml_collections.ConfigDict,
  workdir: str,
  config_file: str,
  allow_config_change: bool = False,
) -> list[str]:
  """One shell command per selected experiment: this table mode restricted to its row.

  The command changes to the repository and names the same Python, workdir (absolute)
  and `table.seeds`/`table.overrides`, so a scheduler can run the lines anywhere that
  shares the file system.
  """
  if os.path.abspath(config_file).startswith(runs.ROOT + os.sep):
    config_file = os.path.relpath(os.path.abspath(config_file), runs.ROOT)
  commands = []
  for row in runs.selected_rows(table):
    args = [
      sys.executable,
      'main.py',
      '--mode=table',
      f'--config={config_file}',
      f'--workdir={os.path.abspath(workdir)}',
      f'--config.table.only={row.slug}',
    ]
    if table.table.seeds:
      args.append(f'--config.table.seeds={table.table.seeds}')
    if table.table.overrides:
      args.append(f'--config.table.overrides={table.table.overrides}')
    if allow_config_change:
      args.append('--allow_config_change')
    commands.append(f'cd {shlex.quote(runs.ROOT)} && ' + ' '.join(shlex.quote(a) for a in args))
  return commands
