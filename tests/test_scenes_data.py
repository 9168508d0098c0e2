"""The scenes builders: determinism, label semantics, split hygiene, TFDS plumbing."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import default
from input_pipeline import datasets, dense_data, digits, idx, scenes


def test_scenes_are_deterministic_and_label_the_top_item_above_threshold():
  """Canvas = item size puts every item at (0, 0), so each pixel's label is known: the
  class + 1 of the last pasted item that is above the threshold there, else 0."""
  rng = np.random.default_rng(0)
  items = rng.integers(0, 256, (6, 5, 5)).astype(np.uint8)
  classes = np.array([3, 0, 9, 3, 5, 1])
  ids = np.arange(100, 106)
  images, masks, item_ids = scenes.make_scenes(items, classes, ids, 200, 5, 128, seed=7)
  again = scenes.make_scenes(items, classes, ids, 200, 5, 128, seed=7)
  for a, b in zip((images, masks, item_ids), again):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(images, scenes.make_scenes(items, classes, ids, 200, 5, 128, seed=8)[0])
  counts = (item_ids >= 0).sum(1)
  assert set(counts) == {1, 2, 3, 4}  # 1 to 4 items, every count occurs
  assert np.all(item_ids[:, :1] >= 100)  # pasted items are named by their ids
  for image, mask, pasted in zip(images, masks, item_ids):
    want = np.zeros((5, 5), np.uint8)
    for i in pasted[pasted >= 0] - 100:
      want = np.where(items[i] > 128, classes[i] + 1, want)
    np.testing.assert_array_equal(mask, want)
    np.testing.assert_array_equal(mask > 0, image > 128)


def test_scenes_on_a_larger_canvas_keep_labels_exactly_where_the_image_is_bright():
  rng = np.random.default_rng(1)
  items = (rng.random((20, 8, 8)) * 255).astype(np.uint8)
  images, masks, item_ids = scenes.make_scenes(
    items, np.arange(20) % 10, np.arange(20), 100, 24, 96, seed=0
  )
  np.testing.assert_array_equal(masks > 0, images > 96)
  for mask, pasted in zip(masks, item_ids):
    present = set(np.unique(mask)) - {0}
    assert present <= {p % 10 + 1 for p in pasted[pasted >= 0]}


def test_digit_scenes_builder_uses_each_splits_own_digits(data_dir):
  config = default.get_config()
  config.dataset.name, config.dataset.data_dir = 'digit_scenes', data_dir
  config.task, config.dataset.num_classes, config.input.channels = 'segmentation', 11, 1
  builder = datasets.get_builder(config.dataset)
  assert dense_data.check_features(builder, config) == scenes.DigitScenes.CLASS_NAMES
  sizes = {s: datasets.num_examples(builder, s) for s in ('train', 'test')}
  assert sizes == {'train': 12_000, 'test': 1_000}
  train_digits, test_digits = digits._split_indices()  # noqa: SLF001
  ids = {
    split: np.concatenate(
      [b['item_ids'] for b in tfds.as_numpy(builder.as_dataset(split=split).batch(4096))]
    )
    for split in sizes
  }
  assert set(ids['test'][ids['test'] >= 0]) <= set(test_digits)
  assert set(ids['train'][ids['train'] >= 0]) <= set(train_digits)
  # What TFDS stored is what the builder's inputs make again (determinism).
  test = dense_data.load_arrays(builder, 'test', config)
  images, masks, item_ids = scenes.make_scenes(
    *builder.items('test', None), 1_000, 48, scenes.DigitScenes.THRESHOLD, seed=1
  )
  np.testing.assert_array_equal(test['image'][..., 0], images)
  np.testing.assert_array_equal(test['label'], masks)
  np.testing.assert_array_equal(ids['test'], item_ids)
  assert test['label'].max() == 10
  config.dataset.binary_mask = True
  binary = dense_data.load_arrays(builder, 'test[:10]', config)
  np.testing.assert_array_equal(binary['label'], (masks[:10] > 0).astype(np.uint8))


@pytest.mark.skipif(
  not os.path.isdir(idx.FASHION_MNIST_DIR),
  reason='Fashion-MNIST is not installed (apt-get install '
  'dataset-fashion-mnist); the issue asks for it only where installed',
)
def test_fashion_mnist_scenes_take_items_from_their_own_split():
  builder = scenes.FashionMnistScenes(data_dir='/nonexistent')  # not prepared: items only
  items, classes, ids = builder.items('test', _FakeDownloads(idx.FASHION_MNIST_DIR))
  assert items.shape == (10_000, 28, 28) and len(classes) == len(ids) == 10_000
  images, masks, _ = scenes.make_scenes(
    items, classes, ids, 20, 64, scenes.FashionMnistScenes.THRESHOLD, seed=1
  )
  np.testing.assert_array_equal(masks > 0, images > scenes.FashionMnistScenes.THRESHOLD)
  assert images.shape == (20, 64, 64)


class _FakeDownloads:
  def __init__(self, manual_dir):
    self.manual_dir = manual_dir
