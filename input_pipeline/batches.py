"""Host-side batching of in-memory splits, and the hand-off to the devices.

Training batches are a pure function of (seed, step): epoch e visits the examples in
the order of a permutation drawn from (seed, e), so a resumed run sees exactly the
batches it would have seen, whatever the number of devices. Each process takes its own
contiguous slice of every global batch.
"""

import collections
from typing import Iterator

import jax
import numpy as np


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The order in which epoch `epoch` visits the training examples."""
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def _process_slice(global_batch: int) -> slice:
  local = global_batch // jax.process_count()
  start = jax.process_index() * local
  return slice(start, start + local)


def train_batches(
  data: dict[str, np.ndarray], batch_size: int, seed: int, start_step: int = 0
) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's part of global training batches from `start_step` on.

  Args:
    data: the whole split, {'image': uint8 NHWC, 'label': int32}.
    batch_size: global batch size; the last incomplete batch of each epoch is dropped.
    seed: shuffling seed.
    start_step: the first step to produce (to resume).
  """
  n = len(data['label'])
  steps_per_epoch = n // batch_size
  mine = _process_slice(batch_size)
  step = start_step
  while True:
    epoch, i = divmod(step, steps_per_epoch)
    perm = epoch_permutation(n, seed, epoch)
    while i < steps_per_epoch:
      # Sorted (for locality) before slicing, so the global batch is the same
      # whatever the number of processes.
      idx = np.sort(perm[i * batch_size : (i + 1) * batch_size])[mine]
      yield {k: v[idx] for k, v in data.items()}
      i += 1
      step += 1


def eval_batches(data: dict[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's part of every eval batch, in order, each example once.

  The last batch is padded to full size by repeating example 0; `mask` is 1 for real
  examples and 0 for padding, so metrics weighted by it count each example once.
  """
  n = len(data['label'])
  mine = _process_slice(batch_size)
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)
    mask = idx < n
    idx = np.where(mask, idx, 0)[mine]
    batch = {k: v[idx] for k, v in data.items()}
    batch['mask'] = mask[mine].astype(np.float32)
    yield batch


def prefetch_to_device(batches, sharding, size: int = 2):
  """Puts batches on the devices `size` steps ahead of their use.

  Each process contributes its local part; the global array is assembled with
  `jax.make_array_from_process_local_data`. Transfers are asynchronous, so the next
  batch travels while the current step runs.
  """
  queue = collections.deque()

  def put(batch):
    queue.append(jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch))

  it = iter(batches)
  for batch in it:
    put(batch)
    if len(queue) >= size:
      break
  while queue:
    yield queue.popleft()
    for batch in it:
      put(batch)
      break
