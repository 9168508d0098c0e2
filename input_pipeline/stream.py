"""The host-streaming feed: tf.data pipelines over a dataset's TFDS files.

For datasets too large for memory or with images of varying size (ImageNet): each
process reads only its own contiguous shard of the split (`tfds.even_splits`: TFDS
opens only the files that hold it), decodes and crops on parallel threads
(input_pipeline/crops.py), keeps the encoded records in memory when they fit
(`input.host_cache_max_mb`) and hands uint8 batches to `batches.prefetch_to_device`.

Training order is a function of (seed, epoch): epoch e reads the blocks of the process's
shard in an order drawn from (seed, process, e), through a shuffle buffer seeded by the
same, and each example's crop is seeded by (seed, process, e, its position in the
epoch). Epochs follow one another
without a gap (a batch may straddle two), so a run resumed at step s skips the first
s * local_batch records of the stream, undecoded, and continues exactly.
"""

import math
from typing import Iterator

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from input_pipeline import crops, datasets

_MB = 2**20
# Training shards are read in blocks of this many examples (at most MAX_BLOCKS of them),
# in a new order each epoch.
BLOCK, MAX_BLOCKS = 1024, 256


def _image_format(builder) -> tuple[int, bool]:
  """(channels, whether the images are stored as JPEG)."""
  feature = builder.info.features['image']
  return feature.shape[-1], feature.encoding_format == 'jpeg'


def _processes(process_index, process_count) -> tuple[int, int]:
  if process_count is None:
    return jax.process_index(), jax.process_count()
  return process_index, process_count


def _options(input_config: ml_collections.ConfigDict) -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True  # parallel maps keep the order: exact resume
  options.threading.max_intra_op_parallelism = 1  # parallel over examples instead
  if input_config.host_threads:
    options.threading.private_threadpool_size = input_config.host_threads
  return options


def _read(builder, split, cache: bool) -> tf.data.Dataset:
  """The records of `split` in file order (the image left encoded, and the label), kept
  in memory after the first pass if `cache`."""
  ds = datasets.read(builder, split, ('image', 'label'), encoded=('image',))
  return ds.cache() if cache else ds


def _fits(builder, split, input_config) -> bool:
  return encoded_mb(builder, split) <= input_config.host_cache_max_mb


def encoded_mb(builder, split) -> float:
  """Size in MiB of `split`'s records on disk (a slice: its share of its files)."""
  total = 0.0
  for f in builder.info.splits[split].file_instructions:
    try:
      size = tf.io.gfile.stat(f.filename).length
    except tf.errors.NotFoundError:  # mocked datasets (tfds.testing) have no files
      continue
    total += size * f.take / max(f.examples_in_shard, 1)
  return total / _MB


def train_image_fn(
  input_config: ml_collections.ConfigDict, channels: int, jpeg: bool, stored_shape
):
  """`fn(encoded, seed) -> uint8 image` of the config's training crop."""
  size, crop = input_config.image_size, input_config.train_crop
  if crop == 'random_resized':
    return lambda enc, seed: crops.random_resized_crop(
      enc,
      seed,
      size,
      tuple(input_config.crop_area_range),
      tuple(input_config.crop_aspect_range),
      channels,
      jpeg,
    )
  if crop == 'scale_jitter':
    return lambda enc, seed: crops.scale_jitter_crop(
      enc, seed, size, tuple(input_config.shorter_side_range), channels, jpeg
    )
  return lambda enc, seed: tf.ensure_shape(crops.decode(enc, channels, jpeg), stored_shape)


def eval_image_fn(input_config: ml_collections.ConfigDict, channels: int, jpeg: bool, stored_shape):
  """`fn(encoded) -> uint8 image` (or 10 views) of the config's evaluation crop."""
  size, resize = input_config.image_size, input_config.eval_resize
  if input_config.eval_crop == 'center':
    return lambda enc: crops.center_crop(enc, size, resize, channels, jpeg)
  if input_config.eval_crop == 'ten_crop':
    return lambda enc: crops.ten_crop(enc, size, resize, channels, jpeg)
  return lambda enc: tf.ensure_shape(crops.decode(enc, channels, jpeg), stored_shape)


def _blocks_in_random_order(builder, shard, input_config, stream_seed):
  """`fn(epoch)`: the shard's records, in blocks of about BLOCK examples taken in an
  order drawn from (stream_seed, epoch), so that a shuffle buffer smaller than the
  shard mixes different examples each epoch (as shuffling the files would)."""
  num_blocks = max(1, min(MAX_BLOCKS, builder.info.splits[shard].num_examples // BLOCK))
  cache = _fits(builder, shard, input_config)
  if num_blocks == 1:
    records = _read(builder, shard, cache)
    return lambda e: records
  splits = tfds.even_splits(shard, n=num_blocks)
  blocks = [_read(builder, b, cache) for b in splits]
  sizes = tf.constant([builder.info.splits[b].num_examples for b in splits], tf.int64)

  def records(e):
    order = tf.random.experimental.stateless_shuffle(
      tf.range(num_blocks, dtype=tf.int64), seed=tf.stack([stream_seed, e])
    )
    choice = tf.data.Dataset.from_tensor_slices(order).flat_map(
      lambda b: tf.data.Dataset.from_tensors(b).repeat(sizes[b])
    )
    return tf.data.Dataset.choose_from_datasets(blocks, choice)

  return records


def _stream_seed(seed: int, process_index: int):
  return tf.constant(seed, tf.int64) * 65_537 + process_index


def train_dataset(
  builder,
  split: str,
  input_config: ml_collections.ConfigDict,
  batch_size: int,
  seed: int,
  start_step: int = 0,
  process_index: int | None = None,
  process_count: int | None = None,
) -> tf.data.Dataset:
  """This process's training batches from `start_step` on, endlessly.

  Args:
    builder: a prepared TFDS builder.
    split: the training split (TFDS slicing allowed, e.g. 'train[:45000]').
    input_config: `config.input`.
    batch_size: the global batch size; this process gets batch_size / process_count.
    seed: the data seed.
    start_step: the first step to produce (to resume).
    process_index, process_count: this process and the number of processes (default:
      JAX's).

  Returns:
    A dataset of {'image': uint8 (local batch, ...), 'label': int32}.
  """
  index, count = _processes(process_index, process_count)
  local_batch = batch_size // count
  shard = tfds.even_splits(split, n=count, drop_remainder=True)[index]
  shard_size = builder.info.splits[shard].num_examples
  channels, jpeg = _image_format(builder)
  image_fn = train_image_fn(input_config, channels, jpeg, builder.info.features['image'].shape)
  stream_seed = _stream_seed(seed, index)
  records = _blocks_in_random_order(builder, shard, input_config, stream_seed)
  buffer = min(input_config.shuffle_buffer, shard_size)

  def epoch(e):
    shuffled = records(e).shuffle(buffer, seed=stream_seed * 1_000_003 + e)
    return shuffled.enumerate().map(
      lambda i, ex: (tf.stack([stream_seed, e * 2**32 + i]), ex['image'], ex['label'])
    )

  first_example = start_step * local_batch
  ds = tf.data.Dataset.range(first_example // shard_size, 2**40).flat_map(epoch)
  ds = ds.skip(first_example % shard_size)
  ds = ds.map(
    lambda s, enc, label: {'image': image_fn(enc, s), 'label': tf.cast(label, tf.int32)},
    num_parallel_calls=tf.data.AUTOTUNE,
  )
  ds = ds.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_options(input_config))


def eval_dataset(
  builder,
  split: str,
  input_config: ml_collections.ConfigDict,
  batch_size: int,
  process_index: int | None = None,
  process_count: int | None = None,
) -> tf.data.Dataset:
  """This process's evaluation batches: every example of its shard once, then padding.

  Every process yields the same number of batches (of batch_size / process_count); the
  padding has `mask` 0, so masked sums count each example of `split` exactly once.
  """
  index, count = _processes(process_index, process_count)
  local_batch = batch_size // count
  per_process = math.ceil(datasets.num_examples(builder, split) / count)
  num_batches = math.ceil(per_process / local_batch)
  shard = tfds.even_splits(split, n=count, drop_remainder=False)[index]
  shard_size = builder.info.splits[shard].num_examples
  channels, jpeg = _image_format(builder)
  image_fn = eval_image_fn(input_config, channels, jpeg, builder.info.features['image'].shape)
  ds = _read(builder, shard, _fits(builder, shard, input_config)).map(
    lambda ex: {
      'image': image_fn(ex['image']),
      'label': tf.cast(ex['label'], tf.int32),
      'mask': tf.constant(1.0),
    },
    num_parallel_calls=tf.data.AUTOTUNE,
  )
  padding = tf.data.Dataset.from_tensors(
    tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), ds.element_spec)
  )
  ds = ds.concatenate(padding.repeat(num_batches * local_batch - shard_size))
  ds = ds.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_options(input_config))


def as_numpy(ds: tf.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
  """Iterates a dataset of batches as numpy arrays."""
  return iter(tfds.as_numpy(ds))
