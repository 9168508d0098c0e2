"""How the devices are fed (`config.input.feed`), and the inputs of the train and eval steps.

- `device_resident` (input_pipeline/resident.py): the training split lives on the
  devices as uint8 and each step gathers its batch; for fixed-size images whose split
  fits in `input.device_resident_max_mb` (MNIST, Fashion-MNIST, CIFAR, the digits).
- `host`: batches are made on the host and prefetched to the devices: from the split
  decoded once into host memory where its images have a fixed size, need no host crop
  and fit in `input.host_cache_max_mb` (batches.py); otherwise streamed from the TFDS
  files by tf.data, decoding and cropping on parallel threads (stream.py: ImageNet).
- `auto`: `device_resident` where it applies, `host` otherwise.

Training batches are a function of (seed, step) in every feed, so a resumed run
continues with the batches an uninterrupted run would have seen. Evaluation sees every
example once (padded last batch, `mask`).
"""

import math
from typing import Callable, Iterator

import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from input_pipeline import batches, datasets, resident, stream
from train_lib.errors import UserError

FEEDS = ('auto', 'device_resident', 'host')
TRAIN_CROPS = ('none', 'random_resized', 'scale_jitter')
EVAL_CROPS = ('none', 'center', 'ten_crop')
_MB = 2**20


def fixed_size(builder) -> bool:
  """Whether every image of the dataset has the same (stored) shape."""
  return None not in builder.info.features['image'].shape


def decoded_mb(builder, split: str) -> float:
  """MiB of `split`'s images as uint8 arrays (inf for images of varying size)."""
  if not fixed_size(builder):
    return math.inf
  shape = builder.info.features['image'].shape
  return datasets.num_examples(builder, split) * math.prod(shape) / _MB


def _option(value, valid, field):
  if value not in valid:
    raise UserError(
      f"input.{field}='{value}' is not one of {', '.join(valid)}; set --config.input.{field}"
    )


def choose_feed(config: ml_collections.ConfigDict, builder) -> str:
  """Checks the input options against the dataset; returns 'device_resident' or 'host'.

  Raises:
    UserError: an unknown option, or one the dataset can't take (a crop that its
      images need, a device-resident split that is too large or of varying size).
  """
  inp, name = config.input, builder.name
  _option(inp.feed, FEEDS, 'feed')
  _option(inp.train_crop, TRAIN_CROPS, 'train_crop')
  _option(inp.eval_crop, EVAL_CROPS, 'eval_crop')
  if config.task != 'classification':
    # Dense tasks load their splits as arrays (input_pipeline/dense_data.py).
    if inp.train_crop != 'none' or inp.eval_crop != 'none':
      raise UserError(
        f"task '{config.task}' takes no host crop; set "
        '--config.input.train_crop=none --config.input.eval_crop=none'
      )
    return 'host' if inp.feed == 'auto' else inp.feed
  if (inp.train_crop != 'none' or inp.eval_crop != 'none') and not inp.image_size:
    raise UserError(
      f'input.train_crop={inp.train_crop} and input.eval_crop='
      f'{inp.eval_crop} crop to input.image_size, which is 0; set '
      '--config.input.image_size'
    )
  if not fixed_size(builder):
    for field, value, fix in (
      ('train_crop', inp.train_crop, 'random_resized'),
      ('eval_crop', inp.eval_crop, 'center'),
    ):
      if value == 'none':
        raise UserError(
          f"dataset '{name}' has images of varying size, which "
          f"input.{field}='none' can't batch; set "
          f'--config.input.{field}={fix}'
        )
  size = decoded_mb(builder, config.dataset.train_split)
  fits = inp.train_crop == 'none' and size <= inp.device_resident_max_mb
  if inp.feed == 'device_resident' and not fits:
    why = (
      f"its training images need the host crop input.train_crop='{inp.train_crop}'"
      if inp.train_crop != 'none'
      else f'its training split takes {size:,.1f} MiB, more than '
      f'input.device_resident_max_mb={inp.device_resident_max_mb}'
    )
    raise UserError(
      f"input.feed='device_resident' can't hold dataset '{name}': {why}; "
      'set --config.input.feed=host (or raise the limit)'
    )
  if inp.feed == 'auto':
    return 'device_resident' if fits else 'host'
  return inp.feed


def _in_host_memory(config, builder, split, crop) -> bool:
  return config.task != 'classification' or (
    crop == 'none' and decoded_mb(builder, split) <= config.input.host_cache_max_mb
  )


def train_inputs(
  config: ml_collections.ConfigDict,
  builder,
  mesh: Mesh,
  feed: str,
  start_step: int,
  load_arrays=datasets.load_arrays,
) -> Iterator[tuple]:
  """Yields the arguments after the state of each train step, from `start_step` on.

  Args:
    config: the experiment config.
    builder: the prepared dataset.
    mesh: the device mesh.
    feed: `choose_feed`'s answer.
    start_step: the first step (to resume).
    load_arrays: `fn(builder, split)` reading a split into host memory (the task's).

  Returns:
    `(data, perm)` for the device-resident step, `(batch,)` for the host-fed one.
  """
  split = config.dataset.train_split
  if feed == 'device_resident':
    return resident.step_inputs(
      load_arrays(builder, split), config.batch_size, config.seed, start_step, mesh
    )
  if _in_host_memory(config, builder, split, config.input.train_crop):
    host = batches.train_batches(
      load_arrays(builder, split), config.batch_size, config.seed, start_step
    )
  else:
    host = stream.as_numpy(
      stream.train_dataset(builder, split, config.input, config.batch_size, config.seed, start_step)
    )
  return (
    (batch,)
    for batch in batches.prefetch_to_device(
      host, NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    )
  )


def eval_inputs(
  config: ml_collections.ConfigDict, builder, load_arrays=datasets.load_arrays
) -> dict[str, np.ndarray] | Callable[[], Iterator[dict]]:
  """The evaluation split: in host memory as arrays where it fits (and needs no crop),
  else a function returning a fresh pass of streamed, padded and masked batches."""
  split = config.dataset.eval_split
  if _in_host_memory(config, builder, split, config.input.eval_crop):
    return load_arrays(builder, split)
  ds = stream.eval_dataset(builder, split, config.input, config.eval_batch_size)
  return lambda: stream.as_numpy(ds)
