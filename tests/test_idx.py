"""The IDX reader and the Fashion-MNIST / MNIST builders over IDX files.

Hand-made IDX files (written here, always run) check the decoding, the builders'
round trip and every error; the real Fashion-MNIST files of the Debian package check
the dataset itself and a short training run, and skip where it is not installed.
"""

import gzip
import importlib
import os
import struct

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from helpers import assert_user_error, read_metrics, run_main

from configs import fashion_mnist_resnet
from configs.tables import fashion_mnist
from input_pipeline import datasets, idx, preprocess
from input_pipeline.errors import DataError
from models import googlenet, lenet, resnet, vgg

APT = idx.FASHION_MNIST_APT
REAL = pytest.mark.skipif(
  not all(
    os.path.isfile(os.path.join(idx.FASHION_MNIST_DIR, f + '.gz'))
    for pair in idx.FILES.values()
    for f in pair
  ),
  reason=f'Fashion-MNIST is not installed in {idx.FASHION_MNIST_DIR}; install it with `{APT}`',
)


def write_idx(path, array: np.ndarray, magic: int | None = None) -> str:
  """Writes `array` (uint8) as an IDX file, gzip-compressed if `path` ends in .gz."""
  magic = (0x08 << 8) | array.ndim if magic is None else magic
  data = struct.pack('>I', magic) + struct.pack(f'>{array.ndim}I', *array.shape)
  data += np.ascontiguousarray(array, np.uint8).tobytes()
  with (gzip.open if str(path).endswith('.gz') else open)(path, 'wb') as f:
    f.write(data)
  return str(path)


def _fake_split(n, seed):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
  images[0] = 0  # the extremes survive the PNG round trip
  images[1] = 255
  labels = (np.arange(n) * 7 + seed) % 10
  return images, labels.astype(np.uint8)


@pytest.fixture
def idx_dir(tmp_path):
  """Four hand-made IDX files: train gzip-compressed (as distributed), test not."""
  d = tmp_path / 'idx'
  d.mkdir()
  train, test = _fake_split(20, 0), _fake_split(10, 1)
  write_idx(d / 'train-images-idx3-ubyte.gz', train[0])
  write_idx(d / 'train-labels-idx1-ubyte.gz', train[1])
  write_idx(d / 't10k-images-idx3-ubyte', test[0])
  write_idx(d / 't10k-labels-idx1-ubyte', test[1])
  return str(d), {'train': train, 'test': test}


def _dataset_config(name, data_dir, manual_dir=''):
  return ml_collections.ConfigDict(
    {'name': name, 'data_dir': data_dir, 'download': False, 'manual_dir': manual_dir}
  )


def test_read_idx_decodes_gzip_and_raw_files(idx_dir):
  directory, want = idx_dir
  images, labels = idx.read_split(directory, 'train')
  assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(images[..., 0], want['train'][0])
  np.testing.assert_array_equal(labels, want['train'][1])
  raw = idx.read_idx(os.path.join(directory, 't10k-images-idx3-ubyte'), 3)
  np.testing.assert_array_equal(raw, want['test'][0])


def test_png_encoding_is_lossless():
  images = _fake_split(5, 3)[0][..., None]
  for png, image in zip(idx.encode_png(images), images):
    np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), image)


@pytest.mark.parametrize('name', ['fashion_mnist_idx', 'mnist_idx'])
def test_builder_round_trip_in_file_order(idx_dir, tmp_path, name):
  directory, want = idx_dir
  builder = datasets.get_builder(_dataset_config(name, str(tmp_path / 'tfds'), directory))
  for split, (images, labels) in want.items():
    data = datasets.load_arrays(builder, split)
    np.testing.assert_array_equal(data['image'][..., 0], images)
    np.testing.assert_array_equal(data['label'], labels)


@pytest.mark.parametrize(
  'ours, catalog', [('fashion_mnist_idx', 'fashion_mnist'), ('mnist_idx', 'mnist')]
)
def test_features_as_the_catalog_which_is_not_shadowed(tmp_path, ours, catalog):
  """Importing our builders leaves TFDS's own under their names; features match."""
  assert datasets.OUR_BUILDERS[ours] is tfds.builder_cls(ours)
  theirs = tfds.builder(catalog, data_dir=str(tmp_path))
  assert type(theirs).__module__.startswith('tensorflow_datasets.')
  mine = datasets.OUR_BUILDERS[ours](data_dir=str(tmp_path))
  for b in (mine, theirs):
    assert b.info.features['image'].shape == (28, 28, 1)
    assert b.info.features['image'].np_dtype == np.uint8
  assert mine.info.features['label'].names == theirs.info.features['label'].names
  assert mine.info.supervised_keys == theirs.info.supervised_keys
  with pytest.raises(tfds.core.registered.DatasetNotFoundError):
    tfds.builder_cls('idx_image_classification')  # the base class is not registered


def test_fashion_mnist_label_names():
  names = datasets.OUR_BUILDERS['fashion_mnist_idx']().info.features['label'].names
  assert len(names) == 10 and (names[0], names[5], names[9]) == (
    'T-shirt/top',
    'Sandal',
    'Ankle boot',
  )


def _error(call, *fragments):
  with pytest.raises(DataError) as e:
    call()
  for fragment in fragments:
    assert fragment in str(e.value), str(e.value)


def test_missing_file(idx_dir):
  directory, _ = idx_dir
  os.remove(os.path.join(directory, 'train-labels-idx1-ubyte.gz'))
  path = os.path.join(directory, 'train-labels-idx1-ubyte.gz')
  how = idx.FashionMnistIdx.HOW_TO_GET
  _error(lambda: idx.read_split(directory, 'train', how), path, 'not found', APT)


def test_wrong_magic_number(tmp_path):
  path = write_idx(tmp_path / 'x.gz', np.zeros((2, 28, 28), np.uint8), magic=0x0801)
  _error(
    lambda: idx.read_idx(path, 3, APT),
    path,
    'wrong magic number 0x00000801',
    'expected 0x00000803',
    APT,
  )
  path = write_idx(tmp_path / 'y', np.zeros(3, np.uint8), magic=0x0D01)  # float32 type
  _error(lambda: idx.read_idx(path, 1, APT), path, 'wrong magic number 0x00000d01')


def test_truncated_files(tmp_path):
  full = write_idx(tmp_path / 'full', np.ones((3, 28, 28), np.uint8))
  with open(full, 'rb') as f:
    data = f.read()
  cases = {'short_data': data[:-100], 'short_header': data[:10], 'tiny': data[:2]}
  for name, content in cases.items():
    path = str(tmp_path / name)
    with open(path, 'wb') as f:
      f.write(content)
    _error(lambda p=path: idx.read_idx(p, 3, APT), path, 'is truncated', APT)
  # A gzip stream cut short, as a partial download leaves it.
  packed = gzip.compress(data)
  path = str(tmp_path / 'cut.gz')
  with open(path, 'wb') as f:
    f.write(packed[: len(packed) // 2])
  _error(lambda: idx.read_idx(path, 3, APT), path, 'is truncated', APT)
  # Longer than its header says is an error too: it is not the file the header names.
  path = str(tmp_path / 'long')
  with open(path, 'wb') as f:
    f.write(data + b'\0')
  _error(lambda: idx.read_idx(path, 3, APT), path, 'longer than its header says')


def test_files_that_do_not_fit_each_other(idx_dir):
  directory, want = idx_dir
  write_idx(os.path.join(directory, 'train-labels-idx1-ubyte.gz'), want['train'][1][:5])
  _error(lambda: idx.read_split(directory, 'train'), '20 images but 5 labels')
  write_idx(os.path.join(directory, 'train-labels-idx1-ubyte.gz'), np.full(20, 10, np.uint8))
  _error(lambda: idx.read_split(directory, 'train'), 'has label 10')


def test_builder_errors_leave_nothing_prepared(idx_dir, tmp_path):
  directory, _ = idx_dir
  data_dir = str(tmp_path / 'tfds')
  bad = os.path.join(directory, 't10k-images-idx3-ubyte')
  write_idx(bad, np.zeros((10, 28, 28), np.uint8), magic=0x0801)
  config = _dataset_config('fashion_mnist_idx', data_dir, directory)
  _error(lambda: datasets.get_builder(config), bad, 'wrong magic number', APT)
  missing = str(tmp_path / 'nowhere')
  _error(
    lambda: datasets.get_builder(_dataset_config('fashion_mnist_idx', data_dir, missing)),
    missing,
    APT,
  )
  # Fixed files are then prepared: the failed attempts left no half-prepared dataset.
  write_idx(bad, np.zeros((10, 28, 28), np.uint8))
  builder = datasets.get_builder(config)
  assert datasets.num_examples(builder, 'test') == 10


@pytest.fixture(scope='module')
def real_builder(data_dir):
  """Fashion-MNIST from the Debian package, prepared once into the session's data dir."""
  return datasets.get_builder(_dataset_config('fashion_mnist_idx', data_dir))


@REAL
def test_real_fashion_mnist(real_builder):
  assert datasets.num_examples(real_builder, 'train') == 60_000
  assert datasets.num_examples(real_builder, 'test') == 10_000
  for split, per_class in (('train', 6_000), ('test', 1_000)):
    data = datasets.load_arrays(real_builder, split)
    assert data['image'].shape[1:] == (28, 28, 1) and data['image'].dtype == np.uint8
    assert data['label'].min() == 0 and data['label'].max() == 9
    np.testing.assert_array_equal(np.bincount(data['label'], minlength=10), [per_class] * 10)
    if split == 'train':
      # The files' first image is an ankle boot, and the dataset keeps their order.
      assert data['label'][0] == 9
      names = real_builder.info.features['label'].names
      assert names[data['label'][0]] == 'Ankle boot'
      first = idx.read_idx(os.path.join(idx.FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'), 3)[0]
      np.testing.assert_array_equal(data['image'][0, ..., 0], first)


@REAL
def test_main_trains_fashion_mnist_lenet5(real_builder, data_dir, tmp_path):
  del real_builder  # prepared: the run only reads it
  workdir = str(tmp_path / 'run')
  result = run_main(
    '--config=configs/fashion_mnist_lenet5.py',
    f'--workdir={workdir}',
    f'--config.dataset.data_dir={data_dir}',
    '--config.dataset.train_split=train[:512]',
    '--config.dataset.eval_split=test[:256]',
    '--config.batch_size=64',
    '--config.eval_batch_size=64',
    '--config.num_train_steps=4',
    '--config.log_every_steps=2',
  )
  assert result.returncode == 0, result.stderr
  last = [r for r in read_metrics(workdir) if r['split'] == 'test'][-1]
  assert last['step'] == 4 and 0.0 <= last['accuracy'] <= 1.0


def test_main_missing_files_is_one_error_line(tmp_path):
  missing = str(tmp_path / 'no-fashion-mnist')
  result = run_main(
    '--config=configs/fashion_mnist_lenet5.py',
    f'--workdir={tmp_path}/run',
    f'--config.dataset.data_dir={tmp_path}/tfds',
    f'--config.dataset.manual_dir={missing}',
  )
  assert_user_error(result, missing, APT)


def test_table_rows_name_configs_that_load():
  table = fashion_mnist.get_table()
  # The families' own names (the registry merges them).
  models = {**lenet.MODELS, **resnet.MODELS, **vgg.MODELS, **googlenet.MODELS}
  inputs = {
    'lenet5_modern': 32,
    'lenet5_softmax': 32,
    'cifar_resnet20': 32,
    'cifar_plain20': 32,
    'cifar_resnet56': 32,
    'cifar_plain56': 32,
    'resnet18': 64,
    'googlenet': 64,
    'vgg16': 32,
  }
  for row in table.rows:
    assert os.path.isfile(os.path.join(os.path.dirname(__file__), '..', row.config))
    module = importlib.import_module(row.config.removesuffix('.py').replace('/', '.'))
    config = module.get_config(row.config_arg) if row.config_arg else module.get_config()
    assert config.dataset.name == 'fashion_mnist_idx' and config.input.channels == 1
    assert config.model.name in models, row.name
    size = inputs[config.model.name]
    assert preprocess.model_input_shape(config.input, (28, 28, 1)) == (size, size, 1)
    assert row.published is None or 80 < row.published < 100  # test accuracy, %
    assert row.seeds and row.cpu_hours > 0
  names = {r.name for r in fashion_mnist.quick_rows(table)}
  assert 'LeNet-5' in names and 'ResNet-20' not in names  # ResNet-20 needs hours
  published = {r.name: r.published for r in table.rows}
  assert published['ResNet-18'] == 94.9 and published['LeNet-5'] == 91.6
  assert {c.name: c.published for c in table.context}['WRN-28-10'] == 95.9


@pytest.mark.parametrize(
  'variant, model, shortcut',
  [
    ('20', 'cifar_resnet20', 'A'),
    ('56', 'cifar_resnet56', 'A'),
    ('plain20', 'cifar_plain20', 'none'),
    ('plain56', 'cifar_plain56', 'none'),
  ],
)
def test_resnet_configs(variant, model, shortcut):
  config = fashion_mnist_resnet.get_config(variant)
  assert (config.model.name, config.model.shortcut) == (model, shortcut)
  assert (config.input.image_size, config.input.pad_to) == (0, 32)
  assert config.input.crop_padding == 4 and config.input.random_flip
  assert config.num_train_steps == 64_000
  with pytest.raises(ValueError, match='plain56'):
    fashion_mnist_resnet.get_config('110')
