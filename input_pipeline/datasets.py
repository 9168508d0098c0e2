"""Dataset lookup: the project's own TFDS builders and TFDS catalog datasets by name.

Every dataset goes through one path: find the builder, make sure it is prepared (our
builders prepare offline on first use; catalog datasets only when
`config.dataset.download` is set, or, for ImageNet, from the archives in
`config.dataset.manual_dir`), then read splits (as numpy arrays here, or streamed by
input_pipeline/stream.py).

Splits may be TFDS slices, e.g. the ResNet paper's CIFAR validation: `train[:45000]`
for training and `train[45000:]` for validation. Slicing is deterministic: it selects
examples by their position in the prepared files, whose order is fixed when they are
written, and splits are read with `shuffle_files=False`, so a slice is the same
examples in the same order on every read and every machine.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from input_pipeline import digits, idx, scenes  # noqa: E402
from input_pipeline.errors import DataError  # noqa: E402

# TensorFlow only reads data here: it must never take an accelerator from JAX.
tf.config.set_visible_devices([], 'GPU')

# Builders of this project, prepared offline; anything else is looked up in TFDS.
OUR_BUILDERS = {
  'digits': digits.Digits,
  'fashion_mnist_idx': idx.FashionMnistIdx,
  'mnist_idx': idx.MnistIdx,
  # Segmentation scenes of pasted items (input_pipeline/scenes.py).
  'digit_scenes': scenes.DigitScenes,
  'fashion_mnist_scenes': scenes.FashionMnistScenes,
}


def get_builder(dataset_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns a prepared builder for `dataset_config.name`.

  Args:
    dataset_config: `config.dataset` (name, data_dir, download; manual_dir for our
      builders that read local files).

  Returns:
    The prepared TFDS builder.

  Raises:
    DataError: unknown name, or a catalog dataset that is not prepared and may not be
      downloaded.
  """
  name, data_dir = dataset_config.name, dataset_config.data_dir
  if name in OUR_BUILDERS:
    builder = OUR_BUILDERS[name](data_dir=data_dir)
    if not _is_prepared(builder):
      _prepare(builder, download_config=_download_config(builder, dataset_config))
    return builder
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(
      f"unknown dataset '{name}'; ours: {', '.join(sorted(OUR_BUILDERS))}, or any "
      'TFDS catalog name (mnist, cifar10, ...); set --config.dataset.name'
    ) from None
  if not _is_prepared(builder):
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:  # imagenet2012: archives one downloads
      _prepare_from_manual_dir(builder, dataset_config.manual_dir)
      return builder
    if not dataset_config.download:
      raise DataError(
        f"dataset '{name}' is not prepared in {builder.data_dir}; prepare it with "
        f'`tfds build {name} --data_dir=...` on a machine with network, or set '
        '--config.dataset.download=True (or --config.dataset.data_dir to where it is)'
      )
    _prepare(builder)
  return builder


def _prepare(builder, **kwargs) -> None:
  """`download_and_prepare`, where the processes of a multi-host run may all prepare the
  same shared directory at once: those that finish after the first find it in place."""
  try:
    builder.download_and_prepare(**kwargs)
  except FileExistsError:
    if not _is_prepared(builder):
      raise


# Catalog datasets that TFDS prepares from archives the user downloads, into
# `config.dataset.manual_dir`: (the files, where they come from).
MANUAL_FILES = {
  'imagenet2012': (
    ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar'),
    'https://image-net.org/download-images (ILSVRC 2012)',
  ),
}


def _prepare_from_manual_dir(builder, manual_dir: str) -> None:
  """Prepares a catalog dataset from the archives in `manual_dir` (once; hours for
  ImageNet), after checking that they are there."""
  name = builder.name
  files, source = MANUAL_FILES.get(name, ((), 'its TFDS catalog page'))
  what = ' and '.join(files) or 'the files its TFDS catalog page lists'
  how = (
    f'download {what} from {source} into one directory and set '
    f'--config.dataset.manual_dir to it (the run then prepares the dataset once), '
    f'or run `tfds build {name} --manual_dir=DIR --data_dir=...` first'
  )
  if not manual_dir:
    raise DataError(
      f"dataset '{name}' is not prepared in {builder.data_dir} and is "
      f'built from archives one downloads by hand: {how}'
    )
  missing = [f for f in files if not tf.io.gfile.exists(os.path.join(manual_dir, f))]
  if not tf.io.gfile.isdir(manual_dir) or missing:
    absent = ', '.join(missing) if tf.io.gfile.isdir(manual_dir) else 'the directory'
    raise DataError(f'{absent} not found in --config.dataset.manual_dir={manual_dir}; {how}')
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))


def _download_config(builder, dataset_config) -> tfds.download.DownloadConfig | None:
  """Builders that read local files find them in `manual_dir` ('': the builder's)."""
  default = getattr(builder, 'DEFAULT_MANUAL_DIR', None)
  if default is None:
    return None
  return tfds.download.DownloadConfig(manual_dir=dataset_config.manual_dir or default)


def _is_prepared(builder) -> bool:
  return tf.io.gfile.exists(os.path.join(builder.data_dir, 'dataset_info.json'))


def num_examples(builder, split: str) -> int:
  """Number of examples of `split` (raises DataError for an unknown split)."""
  try:
    return builder.info.splits[split].num_examples
  except (KeyError, ValueError):
    raise DataError(
      f"dataset '{builder.name}' has no split '{split}'; it has {', '.join(builder.info.splits)}"
    ) from None


def fixed_size(builder) -> bool:
  """Whether every image of the dataset has the same (stored) shape."""
  return None not in builder.info.features['image'].shape


class _Subset(tfds.decode.PartialDecoding):
  """TFDS's partial decoding of some top-level features (the others are not even
  parsed), without its check that each one matches itself: that check reads the
  deprecated `FeatureConnector.dtype`, a warning at every start-up."""

  def __init__(self, keys: tuple[str, ...], decoders: dict | None = None):
    super().__init__(dict.fromkeys(keys, True), decoders)
    self.keys = keys

  def extract_features(self, features):
    return tfds.features.FeaturesDict({key: features[key] for key in self.keys})


def read(builder, split: str, keys: tuple[str, ...], encoded: tuple[str, ...] = ()):
  """The examples of `split` in file order, each a dict of the features `keys` only.

  Args:
    builder: the prepared dataset.
    split: a split or a slice of one.
    keys: the top-level features to read.
    encoded: those of `keys` to leave undecoded (`tfds.decode.SkipDecoding`).

  Returns:
    A tf.data.Dataset.

  Raises:
    DataError: an unknown split.
  """
  num_examples(builder, split)
  return builder.as_dataset(
    split=split,
    shuffle_files=False,
    decoders=_Subset(keys, {key: tfds.decode.SkipDecoding() for key in encoded}),
    read_config=tfds.ReadConfig(try_autocache=False),
  )


def load_arrays(builder, split: str) -> dict[str, np.ndarray]:
  """Reads a whole split into memory as {'image': uint8 NHWC, 'label': int32}."""
  chunks = list(tfds.as_numpy(read(builder, split, ('image', 'label')).batch(4096).prefetch(1)))
  return {
    'image': np.concatenate([c['image'] for c in chunks]),
    'label': np.concatenate([c['label'] for c in chunks]).astype(np.int32),
  }


def check_features(builder, config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """Checks that the dataset has a class label per image and the config's channels.

  Returns:
    The names of the classes 0, 1, ... (their number is the dataset's).

  Raises:
    DataError: no class labels, or images of other channels than `input.channels`.
  """
  features = builder.info.features
  if 'label' not in features or not isinstance(features['label'], tfds.features.ClassLabel):
    raise DataError(
      f"dataset '{builder.name}' has no class label per image; set --config.dataset.name "
      'to one that has (digits, mnist, cifar10, ...)'
    )
  channels = features['image'].shape[-1]
  if config.input.channels != channels:
    raise DataError(
      f"dataset '{builder.name}' has {channels}-channel images but "
      f'input.channels={config.input.channels}; set '
      f'--config.input.channels={channels}'
    )
  return tuple(features['label'].names)
