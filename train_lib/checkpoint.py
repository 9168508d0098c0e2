"""Orbax checkpoints of the whole train state: async, atomic, topology-free.

Keeps the newest `keep` checkpoints and the best `keep_best` by an evaluation metric.
A checkpoint is complete only once orbax has renamed its temporary directory, so a run
killed while saving leaves the earlier ones as they were; a newest checkpoint that
fails to restore (truncated, corrupt) is skipped with a warning.

With several processes every process calls `save` and `restore` at the same steps:
orbax writes each array shard once, from a process that holds it, and process 0 (its
primary host) commits the checkpoint, so the workdir must be on storage all processes
share.

A save that fails (a full disk, a workdir removed or turned read-only) stops the run
with one UserError saying what failed, what space the checkpoint needs and what is free,
and which checkpoints are intact; orbax's own error logs from its background threads
are kept off the terminal. Where too little space is free before a save starts, it is
refused then.
"""

import contextlib
import json
import logging
import os
import shutil
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from train_lib import workdir as workdir_lib
from train_lib.errors import UserError

# Orbax warnings that are expected here: saves between evaluations carry no metrics by
# design, and the read-only modes open checkpoints read-only.
_EXPECTED_WARNINGS = ('did not provide metrics', 'read only=', 'read_only=True, setting')


class _DropExpectedWarnings(logging.Filter):
  def filter(self, record):
    message = record.getMessage()
    return not any(w in message for w in _EXPECTED_WARNINGS)


logging.getLogger('absl').addFilter(_DropExpectedWarnings())


class _OrbaxErrors(logging.Filter):
  """Keeps orbax's error logs (tracebacks from its save threads) off the terminal and
  remembers the first, for the one line that reports the failed save."""

  def __init__(self):
    super().__init__()
    self.first = None

  def filter(self, record):
    if record.levelno < logging.ERROR or f'{os.sep}orbax{os.sep}' not in record.pathname:
      return True
    if self.first is None:
      self.first = (record.exc_info and record.exc_info[1]) or RuntimeError(record.getMessage())
    return False


_ORBAX_ERRORS = _OrbaxErrors()
logging.getLogger('absl').addFilter(_ORBAX_ERRORS)


class _AfterAFailedSave(logging.Filter):
  """Once a save failed, asyncio's reports of the storage library's errors that nobody
  read (at garbage collection, often at exit) are dropped: the failure was reported."""

  failed = False

  def filter(self, record):
    return not (self.failed and 'exception was never retrieved' in record.getMessage())


_ASYNCIO_AFTER_FAILURE = _AfterAFailedSave()
logging.getLogger('asyncio').addFilter(_ASYNCIO_AFTER_FAILURE)


def _set_aside_unreadable(directory: str) -> None:
  """Renames step directories whose JSON metadata does not parse to `<step>.corrupt`.

  Nothing is deleted; orbax ignores the renamed directories.
  """
  for name in sorted(os.listdir(directory)):
    step_dir = os.path.join(directory, name)
    if not (name.isdigit() and os.path.isdir(step_dir)):
      continue
    for root, _, files in os.walk(step_dir):
      broken = False
      for f in files:
        if f.startswith('_') or f == 'metrics':
          try:
            with open(os.path.join(root, f)) as fh:
              json.load(fh)
          except (ValueError, UnicodeDecodeError):
            broken = True
      if broken:
        os.rename(step_dir, step_dir + '.corrupt')
        print(
          f'warning: checkpoint {name} in {directory} has unreadable metadata; '
          f'skipping it (moved to {name}.corrupt)',
          flush=True,
        )
        break


def exists(workdir: str | None) -> bool:
  """Whether `workdir` holds a checkpoint (without creating anything there)."""
  if not workdir or not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return False
  checkpoints = Checkpoints(workdir, keep=1, read_only=True)
  latest = checkpoints.latest_step()
  checkpoints.close()
  return latest is not None


def _drop_closed_event_loop_reports() -> None:
  """When a save fails, the storage library may still call back into the event loop of
  orbax's save thread, closed by then; Python would print each call as `Exception
  ignored ...: Event loop is closed`. Those reports are dropped (the failure itself is
  reported as one line); any other report goes on as before."""
  previous = sys.unraisablehook
  if getattr(previous, 'drops_closed_event_loops', False):
    return

  def hook(unraisable):
    e = unraisable.exc_value
    if not (isinstance(e, RuntimeError) and str(e) == 'Event loop is closed'):
      previous(unraisable)

  hook.drops_closed_event_loops = True
  sys.unraisablehook = hook


class Checkpoints:
  """Saves and restores `TrainState`s under `workdir/checkpoints`."""

  def __init__(
    self,
    workdir: str,
    keep: int,
    keep_best: int = 0,
    best_metric: str = 'accuracy',
    best_mode: str = 'max',
    read_only: bool = False,
  ):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self._errors = _ORBAX_ERRORS
    self._failed, self._pending, self._need = False, None, None
    if not read_only:
      _drop_closed_event_loop_reports()
    policies = [checkpoint_managers.LatestN(n=keep)]
    if keep_best:
      policies.append(
        checkpoint_managers.BestN(
          get_metric_fn=lambda m: m[best_metric],
          reverse=best_mode == 'min',
          n=keep_best,
          keep_checkpoints_without_metrics=False,
        )
      )
    options = ocp.CheckpointManagerOptions(
      create=not read_only,
      read_only=read_only,
      # Half-written saves of a run that stopped: only the run holding the workdir
      # (workdir.lock) opens it for writing, so no other run's save is in flight.
      cleanup_tmp_directories=not read_only,
      preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
      best_fn=lambda m: m[best_metric],
      best_mode=best_mode,
    )
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    except ValueError:  # orbax reads every step's JSON metadata when it starts
      if jax.process_index() == 0:
        _set_aside_unreadable(self.directory)
      if jax.process_count() > 1:  # the others wait for process 0's renames
        multihost_utils.sync_global_devices('checkpoints: set aside unreadable')
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    self._workdir = os.path.dirname(self.directory)
    self._identity = workdir_lib.identity(self._workdir)  # to tell a workdir made anew

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    return self._manager.best_step()

  def resolve_step(self, which: str) -> int | None:
    """The step of `which`: None for 'latest' (the newest that restores), the best by
    the evaluation metric for 'best', or the number given.

    Raises:
      UserError: 'best' with no evaluated checkpoint, a step that is not there, or
        another word.
    """
    if which == 'latest':
      return None
    if which == 'best':
      step = self.best_step()
      if step is None:
        raise UserError(
          f'no checkpoint in {self.directory} has evaluation metrics; use --checkpoint=latest'
        )
      return step
    if which.isdigit():
      if int(which) not in self._manager.all_steps():
        raise UserError(
          f'--checkpoint={which}: no such step in {self.directory}; it holds '
          f'{sorted(self._manager.all_steps())}'
        )
      return int(which)
    raise UserError(f"--checkpoint={which} is not 'latest', 'best' or a step number")

  def save(self, state, metrics: dict[str, float] | None = None) -> None:
    """Starts an asynchronous save of `state` at its step (a no-op if it exists).

    Raises:
      UserError: the save failed (e.g. a full disk); earlier checkpoints are intact.
    """
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    self.wait()  # the one before is committed (as orbax would wait), or its error raised
    self._check_room(step, state)
    metrics = None if metrics is None else {k: float(v) for k, v in metrics.items()}
    try:
      self._manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics)
    except Exception as e:  # noqa: BLE001 - any failure here is reported the same way
      raise self._save_error(step, e) from None
    self._pending = step

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed."""
    if self._failed:
      return
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001
      raise self._save_error(self._pending, e) from None
    logged, self._errors.first = self._errors.first, None
    if logged is not None and self._pending is not None:
      if self._pending not in self._committed_steps():  # orbax logged it, did not raise
        raise self._save_error(self._pending, logged)

  def _check_room(self, step: int, state) -> None:
    """Refuses a save that can't fit, or that has no workdir left to go to (with several
    processes, as process 0 finds)."""
    refusal = self._no_room(step, state)
    if jax.process_count() > 1:
      if multihost_utils.broadcast_one_to_all(np.int32(refusal is not None)):
        refusal = refusal or f'process 0 found no room for the checkpoint of step {step}'
      else:
        refusal = None
    if refusal is not None:
      self.abandon()
      raise UserError(refusal)

  def _no_room(self, step: int, state) -> str | None:
    fault = workdir_lib.storage_fault(self._workdir, None, self._identity)
    if fault is not None:
      what, fix = fault
      return f'can not save the checkpoint of step {step}: {what}; {fix}'
    need = self._need = self._size_estimate(state)
    free = shutil.disk_usage(self.directory).free
    if free >= need:
      return None
    return (
      f'not enough disk space for the checkpoint of step {step}: it needs about '
      f'{workdir_lib.size_text(need)}, {workdir_lib.size_text(free)} are free in '
      f'{self.directory}; {self._intact()}; free disk space and run the same command '
      'again to resume'
    )

  def _size_estimate(self, state) -> int:
    """The size of the newest checkpoint, or of the state's arrays before the first."""
    steps = self._committed_steps()
    if steps:
      total = 0
      for root, _, files in os.walk(os.path.join(self.directory, str(steps[-1]))):
        for f in files:
          with contextlib.suppress(OSError):
            total += os.path.getsize(os.path.join(root, f))
      return total
    return sum(getattr(x, 'nbytes', 0) for x in jax.tree.leaves(state))

  def _committed_steps(self) -> list[int]:
    try:
      names = os.listdir(self.directory)
    except OSError:
      return []
    return sorted(int(n) for n in names if n.isdigit())

  def _intact(self) -> str:
    steps = self._committed_steps()
    if not steps:
      return 'no checkpoint was written yet'
    return f'the checkpoints {steps} in {self.directory} are intact'

  def _save_error(self, step, e) -> UserError:
    """One line for a failed save; the manager is abandoned (nothing more is saved)."""
    self.abandon()
    which = f'of step {step} ' if step is not None else ''
    reason = workdir_lib.short_reason(self._errors.first or e)
    fault = workdir_lib.storage_fault(self._workdir, self._errors.first or e, self._identity)
    if fault is not None and not fault[0].startswith('the disk'):  # gone or read-only
      what, fix = fault
      return UserError(f'saving the checkpoint {which}failed: {what}; {fix}')
    space = ''
    with contextlib.suppress(OSError, TypeError):
      free = shutil.disk_usage(self.directory).free
      space = f'; it needs about {workdir_lib.size_text(self._need)}, '
      space += f'{workdir_lib.size_text(free)} are free'
    return UserError(
      f'saving the checkpoint {which}failed ({reason}{space}); {self._intact()}; '
      'free disk space and run the same command again to resume'
    )

  def abandon(self) -> None:
    """After a failed save: stops orbax quietly; nothing more is saved or waited for."""
    if self._failed:
      return
    self._failed = _ASYNCIO_AFTER_FAILURE.failed = True
    with contextlib.suppress(Exception):
      self._manager.close()

  def restore(self, target, step: int | None = None):
    """Restores `step` (default: the newest that restores) with `target`'s shardings.

    `target` may hold arrays or `jax.ShapeDtypeStruct`s with shardings; arrays are
    laid out for the current mesh, whatever mesh saved them. Without `step`, a newest
    checkpoint that fails to restore is skipped with a warning for the one before.

    Raises:
      UserError: no checkpoint restores.
    """
    abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target
    )
    candidates = [step] if step is not None else sorted(self._manager.all_steps(), reverse=True)
    for s in candidates:
      try:
        return self._manager.restore(s, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # noqa: BLE001 - corrupt files fail in many ways
        print(
          f'warning: checkpoint {s} in {self.directory} does not restore '
          f'({type(e).__name__}: {str(e).splitlines()[0][:200]}); skipping it',
          flush=True,
        )
      finally:
        self._errors.first = None  # what orbax logged of it is not a failed save
    raise UserError(
      f'no checkpoint in {self.directory} restores; use a new --workdir '
      'or remove the broken checkpoints'
    )

  def close(self) -> None:
    if not self._failed:
      self._manager.close()
