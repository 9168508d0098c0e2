"""How the devices are fed (`config.input.feed`), and the inputs of the train and eval steps.

- `device_resident` (input_pipeline/resident.py): the training split lives on the
  devices as uint8 and each step gathers its batch; for fixed-size images whose split
  fits in `input.device_resident_max_mb` (MNIST, Fashion-MNIST, CIFAR, the digits).
- `host`: batches are made on the host and prefetched to the devices: from the split
  decoded once into host memory where its images have a fixed size, need no host crop
  and fit in `input.host_cache_max_mb` (batches.py); otherwise streamed from the TFDS
  files by tf.data, decoding and cropping on parallel threads (stream.py: ImageNet).
- `auto`: `device_resident` where it applies, `host` otherwise.

Every function is told what labels to read (`labels`): 'class', one class per image
(datasets.py), or 'mask', a label map per image from the dataset's segmentation masks
(dense_data.py), read whole into host memory and never host-cropped.

Training batches are a function of (seed, step) in every feed, so a resumed run
continues with the batches an uninterrupted run would have seen. Evaluation sees every
example once (padded last batch, `mask`).
"""

import math
from typing import Callable, Iterator

import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from input_pipeline import batches, datasets, dense_data, resident, stream
from input_pipeline.errors import DataError

FEEDS = ('auto', 'device_resident', 'host')
TRAIN_CROPS = ('none', 'random_resized', 'scale_jitter')
EVAL_CROPS = ('none', 'center', 'ten_crop')
LABELS = ('class', 'mask')  # a class per image; a label per pixel
_MB = 2**20


def _check_labels(labels: str) -> None:
  if labels not in LABELS:
    raise ValueError(f"labels='{labels}' is not one of {', '.join(LABELS)}")


def check_features(config: ml_collections.ConfigDict, builder, *, labels: str) -> tuple[str, ...]:
  """Checks the dataset against the config for reading `labels`; returns the names of
  the classes 0, 1, ... (how many there are is the dataset's).

  Raises:
    DataError: the dataset lacks the labels, or its images or the input options don't
      fit the config.
  """
  _check_labels(labels)
  if labels == 'mask':
    return dense_data.check_features(builder, config)
  return datasets.check_features(builder, config)


def load_arrays(
  config: ml_collections.ConfigDict, builder, split: str, *, labels: str
) -> dict[str, np.ndarray]:
  """Reads `split` into host memory: {'image': uint8 NHWC, 'label': int32 (N,)} for
  'class', {'image': uint8 NHWC, 'label': uint8 NHW} for 'mask'."""
  _check_labels(labels)
  if labels == 'mask':
    return dense_data.load_arrays(builder, split, config)
  return datasets.load_arrays(builder, split)


def decoded_mb(builder, split: str) -> float:
  """MiB of `split`'s images as uint8 arrays (inf for images of varying size)."""
  if not datasets.fixed_size(builder):
    return math.inf
  shape = builder.info.features['image'].shape
  return datasets.num_examples(builder, split) * math.prod(shape) / _MB


def _option(value, valid, field):
  if value not in valid:
    raise DataError(
      f"input.{field}='{value}' is not one of {', '.join(valid)}; set --config.input.{field}"
    )


def choose_feed(config: ml_collections.ConfigDict, builder, *, labels: str) -> str:
  """Checks the input options against the dataset; returns 'device_resident' or 'host'.

  Raises:
    DataError: an unknown option, or one the dataset can't take (a crop that its
      images need, a device-resident split that is too large or of varying size, a
      host crop of images read with their masks).
  """
  _check_labels(labels)
  inp, name = config.input, builder.name
  _option(inp.feed, FEEDS, 'feed')
  _option(inp.train_crop, TRAIN_CROPS, 'train_crop')
  _option(inp.eval_crop, EVAL_CROPS, 'eval_crop')
  if labels == 'mask':
    # Images and masks are read whole into host memory (dense_data.py).
    if inp.train_crop != 'none' or inp.eval_crop != 'none':
      raise DataError(
        f"the images of dataset '{name}' are read with their masks, which take no host "
        'crop; set --config.input.train_crop=none --config.input.eval_crop=none'
      )
    return 'host' if inp.feed == 'auto' else inp.feed
  if (inp.train_crop != 'none' or inp.eval_crop != 'none') and not inp.image_size:
    raise DataError(
      f'input.train_crop={inp.train_crop} and input.eval_crop='
      f'{inp.eval_crop} crop to input.image_size, which is 0; set '
      '--config.input.image_size'
    )
  if not datasets.fixed_size(builder):
    for field, value, fix in (
      ('train_crop', inp.train_crop, 'random_resized'),
      ('eval_crop', inp.eval_crop, 'center'),
    ):
      if value == 'none':
        raise DataError(
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
    raise DataError(
      f"input.feed='device_resident' can't hold dataset '{name}': {why}; "
      'set --config.input.feed=host (or raise the limit)'
    )
  if inp.feed == 'auto':
    return 'device_resident' if fits else 'host'
  return inp.feed


def _in_host_memory(config, builder, split, crop, labels) -> bool:
  return labels == 'mask' or (
    crop == 'none' and decoded_mb(builder, split) <= config.input.host_cache_max_mb
  )


def train_inputs(
  config: ml_collections.ConfigDict,
  builder,
  mesh: Mesh,
  feed: str,
  start_step: int,
  *,
  labels: str,
) -> Iterator[tuple]:
  """Yields the arguments after the state of each train step, from `start_step` on.

  Args:
    config: the experiment config.
    builder: the prepared dataset.
    mesh: the device mesh.
    feed: `choose_feed`'s answer.
    start_step: the first step (to resume).
    labels: 'class' or 'mask' (`LABELS`).

  Returns:
    `(data, perm)` for the device-resident step, `(batch,)` for the host-fed one.
  """
  _check_labels(labels)
  split = config.dataset.train_split
  if feed == 'device_resident':
    return resident.step_inputs(
      load_arrays(config, builder, split, labels=labels),
      config.batch_size,
      config.seed,
      start_step,
      mesh,
    )
  if _in_host_memory(config, builder, split, config.input.train_crop, labels):
    host = batches.train_batches(
      load_arrays(config, builder, split, labels=labels), config.batch_size, config.seed, start_step
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
  config: ml_collections.ConfigDict, builder, *, labels: str
) -> dict[str, np.ndarray] | Callable[[], Iterator[dict]]:
  """The evaluation split: in host memory as arrays where it fits (and needs no crop),
  else a function returning a fresh pass of streamed, padded and masked batches."""
  _check_labels(labels)
  split = config.dataset.eval_split
  if _in_host_memory(config, builder, split, config.input.eval_crop, labels):
    return load_arrays(config, builder, split, labels=labels)
  ds = stream.eval_dataset(builder, split, config.input, config.eval_batch_size)
  return lambda: stream.as_numpy(ds)
