"""IDX files (the MNIST file format) and TFDS builders that prepare Fashion-MNIST and
MNIST from their four original files, offline.

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic
number, 0x00 0x00, a type byte (0x08: unsigned bytes) and the number of dimensions; one
big-endian int32 per dimension; then the values, last dimension fastest. Images files
are 0x00000803 (2051: N x 28 x 28), labels files 0x00000801 (2049: N). The files may be
gzip-compressed (`NAME.gz`, as distributed) or not (`NAME`).

- `fashion_mnist_idx`: Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, arXiv 1708.07747)
  from `apt-get install dataset-fashion-mnist`, which puts the four files in
  /usr/share/datasets/fashion-mnist (the default `config.dataset.manual_dir`).
- `mnist_idx`: MNIST from its four original files in `config.dataset.manual_dir`.

Features, splits and label names are those of the TFDS catalog's `fashion_mnist` and
`mnist`, so a config may name either; the class names differ from the catalog's because
TFDS registers builders by class name, and ours must not replace its own. Examples keep
the files' order (example i of a split is record i of its files).
"""

import gzip
import math
import os
import struct
import zlib

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline.errors import DataError

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_MNIST_APT = 'apt-get install dataset-fashion-mnist'
IMAGE_SIZE = 28

# split -> (images file, labels file): the four files' names, as distributed.
FILES = {
  'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
  'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
_ALL_FILES = ', '.join(f + '.gz' for pair in FILES.values() for f in pair)

FASHION_MNIST_LABELS = (
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
)

_UBYTE = 0x08  # The IDX type byte of unsigned bytes, the only type these files use.


def _message(problem: str, how_to_get: str) -> str:
  return f'{problem}; {how_to_get}' if how_to_get else problem


def find_file(directory: str, name: str, how_to_get: str) -> str:
  """Returns `directory/name.gz`, or `directory/name` if only that one exists.

  Raises:
    DataError: neither exists; the message names the file and ends with `how_to_get`.
  """
  for path in (os.path.join(directory, name + '.gz'), os.path.join(directory, name)):
    if os.path.isfile(path):
      return path
  raise DataError(
    _message(
      f'IDX file {os.path.join(directory, name)}.gz not found (nor uncompressed)', how_to_get
    )
  )


def read_idx(path: str, ndim: int, how_to_get: str = '') -> np.ndarray:
  """Reads an IDX file of unsigned bytes with `ndim` dimensions into a uint8 array.

  Args:
    path: the file, gzip-compressed if its name ends in `.gz`.
    ndim: the number of dimensions the file must have (3 for images, 1 for labels).
    how_to_get: the end of every error message: where a good copy comes from.

  Returns:
    The array, of the shape the header gives.

  Raises:
    DataError: the file is unreadable, has a wrong magic number, or is truncated or
      longer than its header says; the message names the file.
  """
  fail = lambda what: DataError(_message(f'IDX file {path} {what}', how_to_get))  # noqa: E731
  try:
    if path.endswith('.gz'):
      with gzip.open(path, 'rb') as f:
        data = f.read()
    else:
      with open(path, 'rb') as f:
        data = f.read()
  except EOFError:
    raise fail('is truncated: its gzip stream ends early') from None
  except (gzip.BadGzipFile, zlib.error) as e:
    raise fail(f'is not a valid gzip file ({e})') from None
  except OSError as e:
    raise fail(f'cannot be read ({e})') from None
  want = (_UBYTE << 8) | ndim
  if len(data) < 4:
    raise fail(f'is truncated: {len(data)} bytes, shorter than the magic number')
  (magic,) = struct.unpack('>I', data[:4])
  if magic != want:
    raise fail(
      f'has the wrong magic number {magic:#010x} (expected {want:#010x}, '
      f'unsigned bytes in {ndim} dimension(s))'
    )
  header = 4 + 4 * ndim
  if len(data) < header:
    raise fail(f'is truncated: {len(data)} bytes, shorter than its {header}-byte header')
  shape = struct.unpack(f'>{ndim}I', data[4:header])
  size = math.prod(shape)  # Python ints: a corrupt header cannot overflow
  if len(data) - header != size:
    state = 'is truncated' if len(data) - header < size else 'is longer than its header says'
    raise fail(
      f'{state}: the header gives shape {shape} ({size} bytes after the header), '
      f'the file has {len(data) - header}'
    )
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_split(
  directory: str, split: str, how_to_get: str = '', num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
  """Reads one split's images (N, 28, 28, 1) uint8 and labels (N,) uint8, checked.

  Raises:
    DataError: a file is missing or bad, or the two files do not fit each other.
  """
  images_name, labels_name = FILES[split]
  images_path = find_file(directory, images_name, how_to_get)
  labels_path = find_file(directory, labels_name, how_to_get)
  images = read_idx(images_path, 3, how_to_get)
  labels = read_idx(labels_path, 1, how_to_get)
  if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
    raise DataError(
      _message(
        f'IDX file {images_path} holds {images.shape[1]}x'
        f'{images.shape[2]} images, not {IMAGE_SIZE}x{IMAGE_SIZE}',
        how_to_get,
      )
    )
  if len(images) != len(labels):
    raise DataError(
      _message(
        f'IDX files {images_path} and {labels_path} hold '
        f'{len(images)} images but {len(labels)} labels',
        how_to_get,
      )
    )
  if len(labels) and labels.max() >= num_classes:
    raise DataError(
      _message(
        f'IDX file {labels_path} has label {labels.max()}, not in 0..{num_classes - 1}', how_to_get
      )
    )
  return images[..., None], labels


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
  return (
    struct.pack('>I', len(payload)) + kind + payload + struct.pack('>I', zlib.crc32(kind + payload))
  )


def encode_png(images: np.ndarray) -> list[bytes]:
  """PNG files of uint8 grayscale images (N, H, W, 1), one per image.

  TFDS's own encoder runs a TensorFlow call per image, about 1 ms each: a minute for
  the 70,000 images. A grayscale PNG is a fixed header, the zlib-compressed rows each
  preceded by a filter byte (0: none) and an end chunk, so building it here with zlib
  is several times faster, and `tfds.features.Image` stores the bytes as they are.
  """
  n, h, w, _ = images.shape
  rows = np.concatenate([np.zeros((n, h, 1), np.uint8), images.reshape(n, h, w)], axis=2)
  head = b'\x89PNG\r\n\x1a\n' + _png_chunk(
    b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)
  )  # 8-bit grayscale
  end = _png_chunk(b'IEND', b'')
  return [head + _png_chunk(b'IDAT', zlib.compress(r.tobytes())) + end for r in rows]


class IdxImageClassification(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the builders over four MNIST-format IDX files in a manual directory."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'From the four original IDX files, in their order.'}
  # Where the files are when `config.dataset.manual_dir` is '' (input_pipeline/datasets).
  DEFAULT_MANUAL_DIR = ''
  # The end of every error message: how to get the files.
  HOW_TO_GET = ''
  MANUAL_DOWNLOAD_INSTRUCTIONS = f'The four IDX files: {_ALL_FILES}.'
  LABEL_NAMES: tuple[str, ...] = ()
  HOMEPAGE = ''
  CITATION = ''

  def _info(self) -> tfds.core.DatasetInfo:
    label = (
      tfds.features.ClassLabel(names=self.LABEL_NAMES)
      if self.LABEL_NAMES
      else tfds.features.ClassLabel(num_classes=10)
    )
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
          'label': label,
        }
      ),
      supervised_keys=('image', 'label'),
      homepage=self.HOMEPAGE,
      citation=self.CITATION,
      disable_shuffling=True,  # keep the files' order
    )

  def _split_generators(self, dl_manager):
    try:
      directory = os.fspath(dl_manager.manual_dir)
    except AssertionError as e:  # TFDS: the manual directory is missing or empty.
      reason = str(e).split('. ')[0].replace('Manual directory', 'the directory')
      raise DataError(f'no IDX files: {reason}; {self.HOW_TO_GET}') from None
    # Read every file before writing anything, so a bad one fails at once.
    splits = {split: read_split(directory, split, self.HOW_TO_GET) for split in FILES}
    return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

  def _generate_examples(self, images, labels):
    for i, (png, label) in enumerate(zip(encode_png(images), labels)):
      yield i, {'image': png, 'label': int(label)}


class FashionMnistIdx(IdxImageClassification):
  """Fashion-MNIST (Zalando's article images) from its IDX files; TFDS `fashion_mnist`."""

  DEFAULT_MANUAL_DIR = FASHION_MNIST_DIR
  HOW_TO_GET = (
    f'install them with `{FASHION_MNIST_APT}` (into {FASHION_MNIST_DIR}) or '
    f'set --config.dataset.manual_dir to a directory with the four files '
    f'({_ALL_FILES})'
  )
  LABEL_NAMES = FASHION_MNIST_LABELS
  HOMEPAGE = 'https://github.com/zalandoresearch/fashion-mnist'
  CITATION = """@article{xiao2017fashionmnist,
  author = {Han Xiao and Kashif Rasul and Roland Vollgraf},
  title = {Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
           Algorithms},
  journal = {arXiv preprint arXiv:1708.07747},
  year = {2017}}"""


class MnistIdx(IdxImageClassification):
  """MNIST handwritten digits from the four original IDX files; TFDS `mnist`."""

  HOW_TO_GET = (
    f'put the four original MNIST files ({_ALL_FILES}) in a directory and '
    'set --config.dataset.manual_dir to it'
  )
  HOMEPAGE = 'http://yann.lecun.com/exdb/mnist/'
  CITATION = """@article{lecun1998gradient,
  author = {Yann LeCun and L{\\'e}on Bottou and Yoshua Bengio and Patrick Haffner},
  title = {Gradient-based learning applied to document recognition},
  journal = {Proceedings of the IEEE}, volume = {86}, number = {11},
  pages = {2278--2324}, year = {1998}}"""
