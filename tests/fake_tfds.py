"""Tiny prepared copies of TFDS catalog datasets, for tests without network.

The catalog's own builder writes them (its features, version and file format) from
made-up examples, so reading them is TFDS's real path. Example i of a split has label
(offset + i) % num_classes, where offset is 0 for train and 1000 for the other split;
imagenet2012's 1000 classes make the label name the example. Fixed-size images carry
their index in pixels (0, 0) and (0, 1) of channel 0 (i % 256, i // 256), which PNG
keeps exactly; the others are random JPEGs of 40-90 pixels a side.
"""

import numpy as np
import tensorflow_datasets as tfds

# name -> (train split, other split)
SPLITS = {
  'mnist': ('train', 'test'),
  'cifar10': ('train', 'test'),
  'cifar100': ('train', 'test'),
  'imagenet2012': ('train', 'validation'),
  'oxford_iiit_pet': ('train', 'test'),
}
OFFSETS = (0, 1000)


def _examples(features, n, offset, rng):
  for i in range(n):
    ex = {}
    for key, feature in features.items():
      if isinstance(feature, tfds.features.Image):
        shape = [d if d is not None else int(rng.integers(40, 91)) for d in feature.shape]
        if key == 'segmentation_mask':  # trimap values 1..3, as the pets'
          ex[key] = rng.integers(1, 4, shape, dtype=np.uint8)
          continue
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        if None not in feature.shape:
          image[0, 0, 0], image[0, 1, 0] = i % 256, i // 256
        ex[key] = image
      elif isinstance(feature, tfds.features.ClassLabel):
        ex[key] = (offset + i) % feature.num_classes
      elif isinstance(feature, tfds.features.Text):
        ex[key] = f'{key}_{offset + i}'
      elif isinstance(feature, tfds.features.BBoxFeature):
        ex[key] = tfds.features.BBox(0.1, 0.2, 0.5, 0.6)
    yield offset + i, ex


def prepare(name: str, data_dir: str, sizes=(40, 12)):
  """Writes `name` with `sizes` examples in its two splits into `data_dir`."""
  builder = tfds.builder(name, data_dir=data_dir)
  rng = np.random.default_rng(0)
  builder._split_generators = lambda dl_manager: {
    split: _examples(builder.info.features, n, offset, rng)
    for split, n, offset in zip(SPLITS[name], sizes, OFFSETS)
  }
  builder.download_and_prepare()
  return tfds.builder(name, data_dir=data_dir)


def prepare_tiny(tmp_path_factory, names=('cifar10', 'imagenet2012')) -> str:
  """A new data dir with `names` prepared at the default sizes (40 train, 12 test)."""
  path = str(tmp_path_factory.mktemp('tiny_tfds'))
  for name in names:
    prepare(name, path)
  return path


def index(images: np.ndarray) -> np.ndarray:
  """The example indices written into fixed-size images (N, H, W, C)."""
  return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 1, 0].astype(int)
