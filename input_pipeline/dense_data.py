"""Splits of dense-prediction datasets as arrays: images and per-pixel label maps.

A dataset with labels per pixel has the features `image` and
`segmentation_mask` (uint8, HxWx1), as TFDS's `oxford_iiit_pet` and our scenes
(input_pipeline/scenes.py). Its mask values become labels 0..C-1 through the dataset's
entry in `MASKS` (identity for ours), with `config.ignore_label` for pixels that count
nowhere; `config.dataset.binary_mask` makes every object label 1 (foreground). Images
of varying sizes (the pets) are resized on the host to `config.input.image_size`
(bilinear; nearest neighbour for the masks) so a split stacks into one array.
"""

import dataclasses

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from input_pipeline import datasets
from input_pipeline.errors import DataError

IGNORE = -1  # in a `Masks.values` table: the config's ignore label
PAD_MODES = ('constant', 'reflect', 'symmetric', 'edge')  # jnp.pad's, for input.pad_to


@dataclasses.dataclass(frozen=True)
class Masks:
  """How a catalog dataset's mask values map to labels, and the labels' names."""

  class_names: tuple[str, ...]
  values: dict[int, int]  # stored mask value -> label (IGNORE: config.ignore_label)


# Catalog datasets whose masks are not labels already.
MASKS = {
  # Parkhi et al. 2012 trimaps: 1 pet, 2 background, 3 the uncertain border, which is
  # left out of the loss and the metrics.
  'oxford_iiit_pet': Masks(('background', 'pet'), {1: 1, 2: 0, 3: IGNORE}),
}


def class_names(builder, binary: bool = False) -> tuple[str, ...]:
  """Names of the labels 0..C-1 of a dense dataset (0: background)."""
  if binary:
    return ('background', 'foreground')
  if builder.name in MASKS:
    return MASKS[builder.name].class_names
  names = getattr(builder, 'CLASS_NAMES', ())
  if not names:
    raise DataError(
      f"dataset '{builder.name}' has no known mask classes; use a scenes dataset "
      "(digit_scenes, ...) or 'oxford_iiit_pet' (--config.dataset.name)"
    )
  return names


def check_features(builder, config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """Checks the dataset and the input options against reading it with its masks.

  Returns:
    The names of the labels 0..C-1 (`class_names`).

  Raises:
    DataError: the dataset has no masks or no known classes, images of other channels
      than `input.channels`, or an input option out of range.
  """
  features = builder.info.features
  if 'segmentation_mask' not in features:
    raise DataError(
      f"dataset '{builder.name}' has no segmentation_mask feature, so it has no labels "
      'per pixel; use digit_scenes, fashion_mnist_scenes or oxford_iiit_pet '
      '(--config.dataset.name)'
    )
  names = class_names(builder, config.dataset.binary_mask)
  channels = features['image'].shape[-1]
  if config.input.channels != channels and channels != 1:  # grey feeds any model
    raise DataError(
      f"dataset '{builder.name}' has {channels}-channel images but "
      f'input.channels={config.input.channels}; set '
      f'--config.input.channels={channels}'
    )
  if config.input.pad_mode not in PAD_MODES:
    raise DataError(
      f"unknown input.pad_mode '{config.input.pad_mode}'; valid: "
      f'{", ".join(PAD_MODES)} (set --config.input.pad_mode)'
    )
  lo, hi = config.input.scale_range
  if not 0 < lo <= hi:
    raise DataError(
      f'input.scale_range={tuple(config.input.scale_range)} must be '
      '(min, max) with 0 < min <= max; set --config.input.scale_range'
    )
  if not datasets.fixed_size(builder) and not config.input.image_size:
    raise DataError(
      f"dataset '{builder.name}' has images of varying sizes; set "
      '--config.input.image_size to resize them'
    )
  return names


def _lookup_table(builder, ignore_label: int) -> np.ndarray | None:
  """A 256-entry table from stored mask values to labels, or None for identity."""
  if builder.name not in MASKS:
    return None
  table = np.full(256, ignore_label, np.uint8)
  for value, label in MASKS[builder.name].values.items():
    table[value] = ignore_label if label == IGNORE else label
  return table


def load_arrays(builder, split: str, config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """Reads a split into memory as {'image': uint8 NHWC, 'label': uint8 NHW}."""
  size = config.input.image_size
  fixed = datasets.fixed_size(builder)

  def example(ex):
    image, mask = ex['image'], ex['segmentation_mask']
    if not fixed:
      image = tf.cast(tf.round(tf.image.resize(image, (size, size))), tf.uint8)
      mask = tf.image.resize(mask, (size, size), method='nearest')
    return {'image': image, 'label': mask[..., 0]}

  ds = datasets.read(builder, split, ('image', 'segmentation_mask'))
  ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE)
  chunks = list(tfds.as_numpy(ds.batch(1024).prefetch(1)))
  data = {k: np.concatenate([c[k] for c in chunks]) for k in ('image', 'label')}
  table = _lookup_table(builder, config.ignore_label)
  if table is not None:
    data['label'] = table[data['label']]
  if config.dataset.binary_mask:
    labels = data['label']
    data['label'] = np.where(labels == config.ignore_label, labels, (labels > 0).astype(np.uint8))
  return data
