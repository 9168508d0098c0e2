"""The TFDS catalog datasets of the papers through our loaders, mocked and tiny-real.

`tfds.testing.mock_data` gives random examples with each dataset's real features
(split sizes from the tiny prepared copies' metadata); the tiny copies (fake_tfds.py)
check what needs known examples: slicing, and the preparation errors.
"""

import fake_tfds
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import default
from input_pipeline import datasets, feeds, stream
from input_pipeline.errors import DataError

MOCK_EXAMPLES = 16
# name -> (stored image shape, classes)
SPECS = {
  'mnist': ((28, 28, 1), 10),
  'cifar10': ((32, 32, 3), 10),
  'cifar100': ((32, 32, 3), 100),
  'imagenet2012': ((None, None, 3), 1000),
  'oxford_iiit_pet': ((None, None, 3), 37),
}


@pytest.fixture(scope='module')
def mock_dir(tmp_path_factory):
  """Metadata of each dataset with MOCK_EXAMPLES examples in each split."""
  path = str(tmp_path_factory.mktemp('mock_tfds'))
  for name in SPECS:
    fake_tfds.prepare(name, path, (MOCK_EXAMPLES, MOCK_EXAMPLES))
  return path


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
  return fake_tfds.prepare_tiny(tmp_path_factory)


def _config(name, data_dir):
  config = default.get_config()
  config.dataset.name, config.dataset.data_dir = name, data_dir
  shape, classes = SPECS[name]
  config.dataset.train_split, config.dataset.eval_split = fake_tfds.SPLITS[name]
  config.dataset.num_classes, config.input.channels = classes, shape[-1]
  return config


@pytest.mark.parametrize('name', ['mnist', 'cifar10', 'cifar100'])
def test_fixed_size_datasets_load_as_uint8_and_live_on_the_devices(name, mock_dir):
  shape, classes = SPECS[name]
  config = _config(name, mock_dir)
  with tfds.testing.mock_data(
    num_examples=MOCK_EXAMPLES, data_dir=mock_dir, policy=tfds.testing.MockPolicy.USE_FILES
  ):
    builder = datasets.get_builder(config.dataset)
    assert len(feeds.check_features(config, builder, labels='class')) == classes
    for split in fake_tfds.SPLITS[name]:
      data = datasets.load_arrays(builder, split)
      assert data['image'].shape == (MOCK_EXAMPLES, *shape)
      assert data['image'].dtype == np.uint8 and data['image'].max() > 128
      assert data['label'].dtype == np.int32
      assert 0 <= data['label'].min() and data['label'].max() < classes
    assert feeds.choose_feed(config, builder, labels='class') == 'device_resident'


@pytest.mark.parametrize('name', ['imagenet2012', 'oxford_iiit_pet'])
def test_jpeg_datasets_stream_crops_and_every_eval_example_once(name, mock_dir):
  _, classes = SPECS[name]
  config = _config(name, mock_dir)
  config.input.image_size, config.input.eval_resize = 24, 28
  config.input.train_crop, config.input.eval_crop = 'random_resized', 'ten_crop'
  train, test = fake_tfds.SPLITS[name]
  with tfds.testing.mock_data(
    num_examples=MOCK_EXAMPLES, data_dir=mock_dir, policy=tfds.testing.MockPolicy.USE_FILES
  ):
    builder = datasets.get_builder(config.dataset)
    assert feeds.choose_feed(config, builder, labels='class') == 'host'
    batches = stream.as_numpy(stream.train_dataset(builder, train, config.input, 8, 0))
    for _ in range(3):  # crosses an epoch
      batch = next(batches)
      assert batch['image'].shape == (8, 24, 24, 3) and batch['image'].dtype == np.uint8
      assert batch['label'].dtype == np.int32
      assert 0 <= batch['label'].min() and batch['label'].max() < classes
    # (Each process's shard is tested on real files: mocks ignore the split asked for.)
    evals = list(
      stream.as_numpy(
        stream.eval_dataset(builder, test, config.input, 10, process_index=0, process_count=1)
      )
    )
    assert [b['image'].shape for b in evals] == [(10, 10, 24, 24, 3)] * 2
    assert [b['mask'].sum() for b in evals] == [10, MOCK_EXAMPLES - 10]
    if name == 'oxford_iiit_pet':  # masks for segmentation: trimap values
      features = builder.info.features
      assert features['segmentation_mask'].shape == (None, None, 1)
      ex = next(
        iter(
          builder.as_dataset(
            split=train,
            decoders=tfds.decode.PartialDecoding({'image': True, 'segmentation_mask': True}),
          )
        )
      )
      assert ex['segmentation_mask'].dtype == np.uint8
      assert ex['segmentation_mask'].shape[-1] == 1


def test_varying_sizes_need_a_crop_and_big_splits_stay_off_device(mock_dir):
  config = _config('imagenet2012', mock_dir)
  config.input.image_size = 32
  with tfds.testing.mock_data(
    num_examples=MOCK_EXAMPLES, data_dir=mock_dir, policy=tfds.testing.MockPolicy.USE_FILES
  ):
    builder = datasets.get_builder(config.dataset)
    with pytest.raises(DataError, match='varying size.*train_crop=random_resized'):
      feeds.choose_feed(config, builder, labels='class')
    config.input.train_crop, config.input.eval_crop = 'scale_jitter', 'center'
    config.input.feed = 'device_resident'
    with pytest.raises(DataError, match="can't hold.*feed=host"):
      feeds.choose_feed(config, builder, labels='class')
  config = _config('cifar10', mock_dir)
  config.input.device_resident_max_mb = 0.01  # 16 CIFAR images take 0.05 MiB
  with tfds.testing.mock_data(
    num_examples=MOCK_EXAMPLES, data_dir=mock_dir, policy=tfds.testing.MockPolicy.USE_FILES
  ):
    assert feeds.choose_feed(config, datasets.get_builder(config.dataset), labels='class') == 'host'
    config.input.feed = 'device_resident'
    with pytest.raises(DataError, match='takes 0.0 MiB, more than'):
      feeds.choose_feed(config, datasets.get_builder(config.dataset), labels='class')


def test_slices_are_deterministic_and_partition_the_split(tiny_dir):
  """The ResNet paper's held-out validation: train[:k] for training, train[k:] for it."""
  builder = datasets.get_builder(_config('cifar10', tiny_dir).dataset)
  whole = datasets.load_arrays(builder, 'train')
  head, tail = (datasets.load_arrays(builder, s) for s in ('train[:30]', 'train[30:]'))
  again = datasets.load_arrays(builder, 'train[:30]')
  np.testing.assert_array_equal(head['image'], again['image'])
  ids = lambda d: fake_tfds.index(d['image']).tolist()  # noqa: E731
  assert ids(head) + ids(tail) == ids(whole)  # the same order, no overlap
  assert sorted(ids(whole)) == list(range(40))
  assert datasets.num_examples(builder, 'train[30:]') == 10


def test_imagenet_prepares_only_from_the_archives(tmp_path):
  dataset = ml_collections.ConfigDict(
    {'name': 'imagenet2012', 'data_dir': str(tmp_path), 'download': True, 'manual_dir': ''}
  )
  with pytest.raises(
    DataError,
    match='ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar.*--config.dataset.manual_dir',
  ):
    datasets.get_builder(dataset)
  archives = tmp_path / 'archives'
  archives.mkdir()
  (archives / 'ILSVRC2012_img_val.tar').write_bytes(b'')
  dataset.manual_dir = str(archives)
  with pytest.raises(DataError, match='^ILSVRC2012_img_train.tar not found in'):
    datasets.get_builder(dataset)
