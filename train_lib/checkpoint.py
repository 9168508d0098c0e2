"""Orbax checkpoints of the whole train state: async, atomic, topology-free.

Keeps the newest `keep` checkpoints and the best `keep_best` by an evaluation metric.
A checkpoint is complete only once orbax has renamed its temporary directory, so a run
killed while saving leaves the earlier ones as they were; a newest checkpoint that
fails to restore (truncated, corrupt) is skipped with a warning.

With several processes every process calls `save` and `restore` at the same steps:
orbax writes each array shard once, from a process that holds it, and process 0 (its
primary host) commits the checkpoint, so the workdir must be on storage all processes
share.
"""

import json
import logging
import os

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from train_lib.errors import UserError


class _DropNoMetricsWarning(logging.Filter):
  """Saves between evaluations carry no metrics by design; orbax warns about each."""

  def filter(self, record):
    return 'did not provide metrics' not in record.getMessage()


logging.getLogger('absl').addFilter(_DropNoMetricsWarning())


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
  checkpoints = Checkpoints(workdir, keep=1)
  latest = checkpoints.latest_step()
  checkpoints.close()
  return latest is not None


class Checkpoints:
  """Saves and restores `TrainState`s under `workdir/checkpoints`."""

  def __init__(
    self,
    workdir: str,
    keep: int,
    keep_best: int = 0,
    best_metric: str = 'accuracy',
    best_mode: str = 'max',
  ):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
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
      create=True,
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
    metrics = None if metrics is None else {k: float(v) for k, v in metrics.items()}
    try:
      self._manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics)
    except Exception as e:  # noqa: BLE001 - any failure here is reported the same way
      raise self._save_error(step, e) from None

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001
      raise self._save_error(None, e) from None

  def _save_error(self, step, e) -> UserError:
    which = f'of step {step} ' if step is not None else ''
    kept = self._manager.all_steps()
    return UserError(
      f'saving the checkpoint {which}failed ({type(e).__name__}: {e}); the earlier '
      f'checkpoints {sorted(kept)} in {self.directory} are intact; free disk space '
      'and run the same command again to resume'
    )

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
    raise UserError(
      f'no checkpoint in {self.directory} restores; use a new --workdir '
      'or remove the broken checkpoints'
    )

  def close(self) -> None:
    self._manager.close()
