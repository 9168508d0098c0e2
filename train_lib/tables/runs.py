"""Where a table's runs live and what state each is in; loading their configs.

A table's workdir holds one directory per experiment and seed, `DIR/<slug>/seed<k>/`,
each an ordinary run directory (config.json, metrics.jsonl, checkpoints/) plus the
table runner's record of the outcome: `result.json` once the run has finished, or
`error.txt` if it failed. A run with neither is unfinished (running or interrupted;
starting the table again resumes it from its checkpoints).
"""

import ast
import dataclasses
import importlib.util
import json
import os
import re

import ml_collections

from train_lib import validation
from train_lib import workdir as workdir_lib
from train_lib.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULT_FILE = 'result.json'
ERROR_FILE = 'error.txt'
EVAL_SPLITS = ('test', 'validation')


@dataclasses.dataclass(frozen=True)
class RunState:
  """One (experiment, seed) run as found on disk."""

  seed: int
  directory: str
  status: str  # done | failed | unfinished | missing
  accuracy: float | None = None  # of the final evaluation (done runs only)
  last_step: int | None = None  # of metrics.jsonl
  seconds: float | None = None  # wall time of the session that finished it
  error: str = ''


def is_table(config: ml_collections.ConfigDict) -> bool:
  """Whether `config` is a table config (configs/tables/) rather than an experiment."""
  return 'rows' in config and 'table' in config


def run_dir(workdir: str, row: ml_collections.ConfigDict, seed: int) -> str:
  return os.path.join(workdir, row.slug, f'seed{seed}')


def _split_list(text: str) -> list[str]:
  return [t.strip() for t in text.split(',') if t.strip()]


def selected_rows(table: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
  """The rows named by `table.table.only` (names or slugs), or every row."""
  by_name = {key: r.slug for r in table.rows for key in (r.slug, r.name.lower())}
  asked = _split_list(table.table.only)
  unknown = sorted(n for n in asked if n.lower() not in by_name)
  if unknown:
    raise UserError(
      f'--config.table.only names unknown rows {unknown}; the rows of '
      f'{table.name} are {", ".join(sorted(r.slug for r in table.rows))}'
    )
  wanted = {by_name[n.lower()] for n in asked}
  return [r for r in table.rows if not wanted or r.slug in wanted]


def selected_seeds(
  table: ml_collections.ConfigDict, row: ml_collections.ConfigDict
) -> tuple[int, ...]:
  """`table.table.seeds` if given, else the row's own seeds."""
  try:
    seeds = tuple(int(s) for s in _split_list(table.table.seeds))
  except ValueError:
    raise UserError(
      f"--config.table.seeds='{table.table.seeds}' is not a comma-"
      'separated list of integers, e.g. 0,1,2'
    ) from None
  return seeds or tuple(row.seeds)


def seeds_on_disk(workdir: str, row: ml_collections.ConfigDict) -> list[int]:
  """Seeds that have a run directory under DIR/<slug>/."""
  directory = os.path.join(workdir, row.slug)
  if not os.path.isdir(directory):
    return []
  return sorted(
    int(m.group(1)) for n in os.listdir(directory) if (m := re.fullmatch(r'seed(\d+)', n))
  )


def read_metrics(directory: str) -> list[dict]:
  """The rows of DIR/metrics.jsonl ([] if none); a half-written last line is skipped."""
  path = os.path.join(directory, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def final_evaluation(metrics: list[dict]) -> dict | None:
  """The last `test` (or `validation`) row: the run's final evaluation."""
  evals = [m for m in metrics if m.get('split') in EVAL_SPLITS]
  return evals[-1] if evals else None


def run_state(workdir: str, row: ml_collections.ConfigDict, seed: int) -> RunState:
  """What is on disk for one run of `row`."""
  directory = run_dir(workdir, row, seed)
  metrics = read_metrics(directory)
  last_step = max((m['step'] for m in metrics), default=None)
  result_path = os.path.join(directory, RESULT_FILE)
  if os.path.exists(result_path):
    with open(result_path) as f:
      result = json.load(f)
    final = final_evaluation(metrics) or result['metrics']
    return RunState(seed, directory, 'done', final['accuracy'], last_step, result.get('seconds'))
  error_path = os.path.join(directory, ERROR_FILE)
  if os.path.exists(error_path):
    with open(error_path) as f:
      error = f.read().strip()
    return RunState(seed, directory, 'failed', last_step=last_step, error=error)
  if os.path.isdir(directory):
    return RunState(seed, directory, 'unfinished', last_step=last_step)
  return RunState(seed, directory, 'missing')


def same_config(directory: str, config: ml_collections.ConfigDict) -> bool:
  """Whether DIR/config.json is `config` (fields added to the defaults since excepted,
  as train_lib/workdir.py excepts them)."""
  old = workdir_lib.read_config(directory)
  if old is None:
    return False
  new = workdir_lib.flatten(json.loads(config.to_json()))
  return all(new.get(k) == v for k, v in workdir_lib.flatten(old).items())


def mark_unfinished(directory: str) -> None:
  """Removes a run's result.json: it is to train on (a longer schedule, say)."""
  path = os.path.join(directory, RESULT_FILE)
  if os.path.exists(path):
    os.remove(path)


def _write_atomically(path: str, text: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def record_result(directory: str, metrics: dict, seconds: float) -> None:
  """Marks a run finished: DIR/result.json with its final metrics and wall time."""
  error_path = os.path.join(directory, ERROR_FILE)
  if os.path.exists(error_path):
    os.remove(error_path)
  result = {'metrics': {k: float(v) for k, v in metrics.items()}, 'seconds': seconds}
  _write_atomically(os.path.join(directory, RESULT_FILE), json.dumps(result, indent=2))


def record_failure(directory: str, message: str) -> None:
  """Marks a run failed (DIR/error.txt); the next table run tries it again."""
  _write_atomically(os.path.join(directory, ERROR_FILE), message + '\n')


def load_module(path: str):
  """Imports a config file by path, as ml_collections' config flags do."""
  name = '_table_config_' + re.sub(r'\W', '_', path)
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def split_overrides(text: str) -> list[tuple[str, str]]:
  """'a.b=1,c=(1, 2)' -> [('a.b', '1'), ('c', '(1, 2)')]: commas inside brackets stay."""
  parts, depth, current = [], 0, ''
  for ch in text:
    depth += (ch in '([{') - (ch in ')]}')
    if ch == ',' and depth == 0:
      parts.append(current)
      current = ''
    else:
      current += ch
  parts.append(current)
  pairs = []
  for part in (p.strip() for p in parts):
    if not part:
      continue
    if '=' not in part:
      raise UserError(
        f"--config.table.overrides: '{part}' is not FIELD=VALUE, e.g. "
        "'num_epochs=2,dataset.data_dir=/data'"
      )
    field, value = part.split('=', 1)
    pairs.append((field.strip(), value.strip()))
  return pairs


def _from_text(text: str, current):
  """A command-line value converted to the type of the field's current value."""
  if isinstance(current, str):
    return text
  if isinstance(current, bool):
    if text.lower() in ('true', 'false'):
      return text.lower() == 'true'
    raise ValueError(f"'{text}' is not true or false")
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text  # a string for a field that is None now (e.g. dataset.data_dir)


def apply_override(
  config: ml_collections.ConfigDict, field: str, value, from_text: bool = False
) -> None:
  """Sets `config.<field>` (dotted) to `value`, as `--config.<field>=value` would.

  A field of `config.model` may be new: the model's constructor takes it (e.g.
  `model.shortcut`, which the ImageNet ResNet configs leave at the model's default).
  """
  *parents, leaf = field.split('.')
  node = config
  try:
    for p in parents:
      node = node[p]
    if parents == ['model'] and leaf not in node:
      with node.unlocked():
        node[leaf] = _from_text(value, None) if from_text else value
      return
    current = node[leaf]
    node[leaf] = _from_text(value, current) if from_text else value
  except (KeyError, AttributeError):
    raise UserError(
      f"unknown config field '{field}' in an override; check it against configs/default.py"
    ) from None
  except (TypeError, ValueError) as e:
    raise UserError(f"bad value {value!r} for config field '{field}': {e}") from None


def experiment_config(
  table: ml_collections.ConfigDict, row: ml_collections.ConfigDict, seed: int
) -> ml_collections.ConfigDict:
  """The resolved config of one run: file and string, the row's and the command line's
  overrides (`table.overrides`), then the seed.

  Raises:
    UserError: a missing config file, a bad config string or override.
  """
  path = os.path.join(ROOT, row.config)
  if not os.path.isfile(path):
    raise UserError(
      f"table {table.name}, row '{row.name}': config file {row.config} does not exist"
    )
  try:
    module = load_module(path)
    config = module.get_config(row.config_arg) if row.config_arg else module.get_config()
    config.lock()  # an override of a field that does not exist is an error, as in main
    for field, value in row.overrides:
      apply_override(config, field, value)
    for field, text in split_overrides(table.table.overrides):
      apply_override(config, field, text, from_text=True)
    validation.check_config(config, 'train')
  except (UserError, ValueError) as e:
    raise UserError(f"table {table.name}, row '{row.name}': {e}") from None
  config.seed = seed
  return config
