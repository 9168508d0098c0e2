"""The device mesh and the shardings of data-parallel training.

Data parallelism is `jax.jit` over a `Mesh` with one axis, `data`: batches are sharded
over it, the train state is replicated. This is the only file that names devices.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from train_lib.errors import UserError

DATA_AXIS = 'data'


def create_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: every device of every process).

  The default orders the devices by process, so each process's devices hold one
  contiguous slice of the batch: the slice its input pipeline reads.
  """
  if devices is None:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over the `data` axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """The same full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, field: str) -> None:
  """Raises UserError unless `batch_size` is positive and splits over the devices."""
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    near = max(n, batch_size // n * n)
    raise UserError(
      f'{field}={batch_size} must be a positive multiple of the {n} devices; '
      f'set --config.{field}={near} (or another multiple of {n})'
    )
