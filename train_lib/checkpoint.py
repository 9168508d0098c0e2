"""Orbax checkpoints of the whole train state: async, atomic, topology-free."""

import os

import jax
import orbax.checkpoint as ocp


class Checkpoints:
  """Saves and restores `TrainState`s under `workdir/checkpoints`."""

  def __init__(self, workdir: str, max_to_keep: int):
    self._manager = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), 'checkpoints'),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, state) -> None:
    """Starts an asynchronous save of `state` at its step (a no-op if it exists)."""
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state))

  def restore(self, target, step: int | None = None):
    """Restores `step` (default newest) with the shardings of `target`'s arrays.

    `target` may hold arrays or `jax.ShapeDtypeStruct`s with shardings; arrays are
    laid out for the current mesh, whatever mesh saved them.
    """
    step = self._manager.latest_step() if step is None else step
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
