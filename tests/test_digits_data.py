"""The embedded digits builder and dataset lookup through TFDS."""

import time

import ml_collections
import numpy as np
import pytest

from input_pipeline import datasets, digits
from input_pipeline.errors import DataError


def _dataset_config(data_dir, name='digits'):
  return ml_collections.ConfigDict({'name': name, 'data_dir': data_dir, 'download': False})


def test_split_sizes_labels_and_images(data_dir):
  builder = datasets.get_builder(_dataset_config(data_dir))
  assert datasets.num_examples(builder, 'train') == digits.NUM_TRAIN == 1437
  assert datasets.num_examples(builder, 'test') == digits.NUM_TEST == 360
  train = datasets.load_arrays(builder, 'train')
  test = datasets.load_arrays(builder, 'test')
  assert train['image'].shape == (1437, 8, 8, 1) and train['image'].dtype == np.uint8
  assert test['image'].shape == (360, 8, 8, 1)
  for split in (train, test):
    assert split['label'].min() == 0 and split['label'].max() == 9
    assert set(np.unique(split['label'])) == set(range(10))  # stratified
  # Pixel values 0..16 scaled to 0..255.
  assert train['image'].max() == 255 and train['image'].min() == 0


def test_split_is_the_documented_one(data_dir):
  from sklearn import datasets as sk

  ref = sk.load_digits()
  train_idx, test_idx = digits._split_indices()
  assert len(set(train_idx) | set(test_idx)) == 1797
  assert not set(train_idx) & set(test_idx)
  builder = datasets.get_builder(_dataset_config(data_dir))
  test = datasets.load_arrays(builder, 'test')
  # The stored test set holds exactly the documented examples (as a multiset).
  expected = np.round(ref.images[test_idx] * 255 / 16).astype(np.uint8)
  got = {(im.tobytes(), int(label)) for im, label in zip(test['image'][..., 0], test['label'])}
  want = {(im.tobytes(), int(label)) for im, label in zip(expected, ref.target[test_idx])}
  assert got == want


def test_unknown_dataset_lists_ours(data_dir):
  with pytest.raises(DataError, match="unknown dataset 'nope'.*digits"):
    datasets.get_builder(_dataset_config(data_dir, 'nope'))


def test_catalog_dataset_not_prepared_fails_at_once(data_dir):
  start = time.time()
  with pytest.raises(DataError, match="'mnist' is not prepared.*download=True"):
    datasets.get_builder(_dataset_config(data_dir, 'mnist'))
  assert time.time() - start < 30  # no download attempt (that retries for minutes)


def test_unknown_split(data_dir):
  builder = datasets.get_builder(_dataset_config(data_dir))
  with pytest.raises(DataError, match="no split 'validation'"):
    datasets.num_examples(builder, 'validation')
