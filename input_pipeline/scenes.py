"""Scenes: TFDS builders of segmentation data made from real images, offline.

A scene is a blank (black) square canvas with 1 to 4 items pasted at uniformly random
positions; a later item covers an earlier one where its own pixels are above the
threshold. The label of a pixel is (class of the item it shows) + 1 where that item's
intensity is above `THRESHOLD`, and 0 (background) elsewhere, so `mask > 0` is exactly
`image > THRESHOLD`: the same scenes give a binary foreground mask for saliency.

- `digit_scenes`: the embedded 8x8 digits (input_pipeline/digits.py, scikit-learn's
  copy of UCI optdigits) upscaled bilinearly to 16x16, on 48x48 canvases; 11 classes.
- `fashion_mnist_scenes`: Fashion-MNIST's 28x28 articles (input_pipeline/idx.py, from
  `apt-get install dataset-fashion-mnist`) on 64x64 canvases; 11 classes.

Train scenes use only items of the source's train split, test scenes only items of its
test split. Scenes are a fixed function of the builder's constants (seed per split), so
every machine builds the same dataset. Features: `image` and `segmentation_mask`
(uint8, HxWx1, as TFDS's `oxford_iiit_pet`), and `item_ids`: the source indices of the
pasted items (-1 for none) in the order they were pasted: for the digits their
indices in scikit-learn's array, for Fashion-MNIST their indices in the split's file.
"""

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import digits, idx

MAX_ITEMS = 4


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of uint8 (N, h, w) to (N, size, size), half-pixel centres."""

  def matrix(n_in):  # rows: output pixels; columns: interpolation weights of inputs
    x = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    m = np.zeros((size, n_in))
    m[np.arange(size), lo] += 1 - (x - lo)
    m[np.arange(size), hi] += x - lo
    return m

  rows, cols = matrix(images.shape[1]), matrix(images.shape[2])
  out = np.einsum('ih,nhw,jw->nij', rows, images.astype(np.float64), cols)
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def make_scenes(
  items: np.ndarray,
  labels: np.ndarray,
  ids: np.ndarray,
  num_scenes: int,
  canvas: int,
  threshold: int,
  seed: int,
):
  """Pastes 1..MAX_ITEMS random items at random positions on each of `num_scenes`.

  Args:
    items: uint8 (N, h, w) item images on a black background.
    labels: (N,) their classes, 0-based.
    ids: (N,) their indices in the source, recorded in `item_ids`.
    num_scenes: how many scenes.
    canvas: the scenes' side in pixels.
    threshold: an item's pixel belongs to it where its intensity is above this.
    seed: the scenes are a function of (items, seed).

  Returns:
    (images, masks, item_ids): uint8 (S, canvas, canvas) twice, int32 (S, MAX_ITEMS)
    with the `ids` of the pasted items, -1 after the last.
  """
  rng = np.random.default_rng(seed)
  h, w = items.shape[1:]
  images = np.zeros((num_scenes, canvas, canvas), np.uint8)
  masks = np.zeros((num_scenes, canvas, canvas), np.uint8)
  item_ids = np.full((num_scenes, MAX_ITEMS), -1, np.int32)
  for s in range(num_scenes):
    for k in range(rng.integers(1, MAX_ITEMS + 1)):
      i = rng.integers(len(items))
      y, x = rng.integers(canvas - h + 1), rng.integers(canvas - w + 1)
      item, box = items[i], (s, slice(y, y + h), slice(x, x + w))
      fg = item > threshold
      # On its own pixels the item covers what was there; its faint rim (at most the
      # threshold) only brightens the background, so labels stay `image > threshold`.
      images[box] = np.where(fg, item, np.maximum(images[box], item))
      masks[box] = np.where(fg, labels[i] + 1, masks[box])
      item_ids[s, k] = ids[i]
  return images, masks, item_ids


class Scenes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the scenes builders; subclasses name the items and the sizes."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  CANVAS = 0
  THRESHOLD = 0
  NUM_SCENES = {'train': 0, 'test': 0}
  SEEDS = {'train': 0, 'test': 1}
  CLASS_NAMES: tuple[str, ...] = ()  # of the mask values 0, 1, ...; 0 is background

  def _info(self) -> tfds.core.DatasetInfo:
    shape = (self.CANVAS, self.CANVAS, 1)
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=shape),
          'segmentation_mask': tfds.features.Image(shape=shape),
          'item_ids': tfds.features.Tensor(shape=(MAX_ITEMS,), dtype=np.int32),
        }
      ),
      disable_shuffling=True,  # keep the generated order
    )

  def items(self, split: str, dl_manager) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source's `split`: uint8 (N, h, w) item images, (N,) classes, (N,) ids."""
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    # Make every split before writing any, so a missing source fails at once.
    scenes = {}
    for split, n in self.NUM_SCENES.items():
      scenes[split] = make_scenes(
        *self.items(split, dl_manager), n, self.CANVAS, self.THRESHOLD, self.SEEDS[split]
      )
    return {split: self._generate_examples(*arrays) for split, arrays in scenes.items()}

  def _generate_examples(self, images, masks, item_ids):
    pngs = idx.encode_png(images[..., None])
    mask_pngs = idx.encode_png(masks[..., None])
    for i in range(len(images)):
      yield i, {'image': pngs[i], 'segmentation_mask': mask_pngs[i], 'item_ids': item_ids[i]}


class DigitScenes(Scenes):
  """Scenes of the embedded 8x8 digits, upscaled to 16x16, on 48x48 canvases."""

  CANVAS = 48
  ITEM_SIZE = 16
  THRESHOLD = 96
  NUM_SCENES = {'train': 12000, 'test': 1000}
  CLASS_NAMES = ('background', *(str(d) for d in range(10)))

  def items(self, split, dl_manager):
    del dl_manager  # The digits ship with scikit-learn.
    from sklearn import datasets

    data = datasets.load_digits()
    # The digits builder's fixed stratified split (private to it, shared here).
    indices = dict(zip(('train', 'test'), digits._split_indices()))[split]  # noqa: SLF001
    images = np.round(data.images[indices] * (255.0 / 16.0)).astype(np.uint8)
    return resize_bilinear(images, self.ITEM_SIZE), data.target[indices], indices


class FashionMnistScenes(Scenes):
  """Scenes of Fashion-MNIST's 28x28 articles on 64x64 canvases."""

  CANVAS = 64
  THRESHOLD = 24  # the articles are dark in places; their surround is exactly 0
  NUM_SCENES = {'train': 20000, 'test': 2000}
  DEFAULT_MANUAL_DIR = idx.FASHION_MNIST_DIR
  MANUAL_DOWNLOAD_INSTRUCTIONS = idx.FashionMnistIdx.MANUAL_DOWNLOAD_INSTRUCTIONS
  CLASS_NAMES = ('background', *idx.FASHION_MNIST_LABELS)

  def items(self, split, dl_manager):
    builder = idx.FashionMnistIdx
    try:
      directory = str(dl_manager.manual_dir)
    except AssertionError:  # TFDS: the manual directory is missing or empty.
      directory = builder.DEFAULT_MANUAL_DIR
    images, labels = idx.read_split(directory, split, builder.HOW_TO_GET)
    return images[..., 0], labels, np.arange(len(labels))
