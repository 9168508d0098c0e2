"""TFDS builder for the UCI optical recognition of handwritten digits (optdigits) data.

The 1,797 8x8 images that scikit-learn ships (`sklearn.datasets.load_digits`), so the
default job and the tests train on real data with no network. Pixel values, counts of
set pixels in 4x4 blocks of the original 32x32 bitmaps, run from 0 to 16; they are
stored as uint8 scaled to 0..255 (round(v * 255 / 16)).

Split (fixed, documented): a stratified 80/20 split of the 1,797 images by
`sklearn.model_selection.train_test_split(test_size=0.2, random_state=0,
stratify=labels)`: 1,437 train and 360 test images, every class in both.
"""

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 1437
NUM_TEST = 360


def _split_indices():
  """Returns (train_indices, test_indices) of the fixed stratified split."""
  from sklearn import datasets, model_selection

  labels = datasets.load_digits().target
  idx = np.arange(len(labels))
  train, test = model_selection.train_test_split(
    idx, test_size=0.2, random_state=0, stratify=labels
  )
  return np.sort(train), np.sort(test)


class Digits(tfds.core.GeneratorBasedBuilder):
  """The 8x8 handwritten digits of scikit-learn (UCI optdigits), 10 classes."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Stratified 80/20 split, random_state=0.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(8, 8, 1)),
          'label': tfds.features.ClassLabel(num_classes=10),
        }
      ),
      supervised_keys=('image', 'label'),
      homepage='https://archive.ics.uci.edu/dataset/80',
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # The data ships with scikit-learn.
    train, test = _split_indices()
    return {'train': self._generate_examples(train), 'test': self._generate_examples(test)}

  def _generate_examples(self, indices):
    from sklearn import datasets

    digits = datasets.load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    for i in indices:
      yield int(i), {'image': images[i], 'label': int(digits.target[i])}
