"""The device-resident feed: a whole training split on the devices, batches drawn in the step.

Datasets that fit in accelerator memory (MNIST, Fashion-MNIST, CIFAR, the digits) are put
on the devices once, as uint8. Each train step then slices its batch's indices out of
the epoch's permutation and gathers the examples itself (`take_batch`, inside the
compiled step, before the in-step augmentation), so no host work or transfer happens
per step: the host only sends a new permutation (4 bytes per example) once per epoch.

The split is replicated, not sharded over the devices: each device gathers its own part
of the batch from its local copy with no communication, and the batch of a step does not
depend on the number of devices. A sharded copy would save memory (1/8 on 8 devices) but
need an all-to-all of the batch every step, or would tie each device to its own
examples and so change the data order with the device count. One copy costs 150 MiB per
device for CIFAR's 50,000 training images, 47 MiB for MNIST's 60,000.

The batches are exactly those of `batches.train_batches` (the same permutation of
(seed, epoch), sorted the same way), so both feeds train identically.
"""

from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from input_pipeline import batches


def put_replicated(tree, mesh: Mesh):
  """Host arrays -> the same full copy on every device of the mesh (every process
  passes the whole of each array)."""
  replicated = NamedSharding(mesh, PartitionSpec())
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(replicated, x), tree)


def take_batch(data, perm, step, batch_size: int, batch_sharding):
  """The global batch of `step` gathered from the resident split (call inside jit).

  Args:
    data: the split, {'image': uint8 (N, ...), 'label': (N,), ...}, replicated.
    perm: int32 (N,), the permutation of the epoch that `step` belongs to.
    step: the 0-based step (traced), e.g. the train state's step counter.
    batch_size: the global batch size.
    batch_sharding: the sharding of batches (leading axis over the devices).

  Returns:
    Every array of `data` at the batch's `batch_size` indices, sharded like a fed batch.
  """
  steps_per_epoch = perm.shape[0] // batch_size
  start = (step % steps_per_epoch) * batch_size
  # Sorted, as batches.train_batches reads them.
  idx = jnp.sort(jax.lax.dynamic_slice_in_dim(perm, start, batch_size))
  # Indices sharded like the batch, data replicated: each device gathers its own rows.
  idx = jax.lax.with_sharding_constraint(idx, batch_sharding)
  return {k: jnp.take(v, idx, axis=0) for k, v in data.items()}


def step_inputs(
  data: dict[str, np.ndarray], batch_size: int, seed: int, start_step: int, mesh: Mesh
) -> Iterator[tuple]:
  """Yields `(data, perm)` on the devices for each step from `start_step` on.

  `data` is put on the devices once; `perm` changes once per epoch.
  """
  resident = put_replicated(data, mesh)
  n = len(data['label'])
  steps_per_epoch = n // batch_size
  step, epoch, perm = start_step, None, None
  while True:
    if step // steps_per_epoch != epoch:
      epoch = step // steps_per_epoch
      perm = put_replicated(batches.epoch_permutation(n, seed, epoch).astype(np.int32), mesh)
    yield resident, perm
    step += 1
