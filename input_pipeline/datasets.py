"""Dataset lookup: the project's own TFDS builders and TFDS catalog datasets by name.

Every dataset goes through one path: find the builder, make sure it is prepared (our
builders prepare offline on first use; catalog datasets only when
`config.dataset.download` is set), then read splits as numpy arrays.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from input_pipeline import digits, idx  # noqa: E402
from train_lib.errors import UserError  # noqa: E402

# TensorFlow only reads data here: it must never take an accelerator from JAX.
tf.config.set_visible_devices([], 'GPU')

# Builders of this project, prepared offline; anything else is looked up in TFDS.
OUR_BUILDERS = {
    'digits': digits.Digits,
    'fashion_mnist_idx': idx.FashionMnistIdx,
    'mnist_idx': idx.MnistIdx,
}


def get_builder(dataset_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns a prepared builder for `dataset_config.name`.

  Args:
    dataset_config: `config.dataset` (name, data_dir, download; manual_dir for our
      builders that read local files).

  Returns:
    The prepared TFDS builder.

  Raises:
    UserError: unknown name, or a catalog dataset that is not prepared and may not be
      downloaded.
  """
  name, data_dir = dataset_config.name, dataset_config.data_dir
  if name in OUR_BUILDERS:
    builder = OUR_BUILDERS[name](data_dir=data_dir)
    if not _is_prepared(builder):
      builder.download_and_prepare(download_config=_download_config(builder, dataset_config))
    return builder
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(
        f"unknown dataset '{name}'; ours: {', '.join(sorted(OUR_BUILDERS))}, or any "
        'TFDS catalog name (mnist, cifar10, ...); set --config.dataset.name') from None
  if not _is_prepared(builder):
    if not dataset_config.download:
      raise UserError(
          f"dataset '{name}' is not prepared in {builder.data_dir}; prepare it with "
          f"`tfds build {name} --data_dir=...` on a machine with network, or set "
          '--config.dataset.download=True (or --config.dataset.data_dir to where it is)')
    builder.download_and_prepare()
  return builder


def _download_config(builder, dataset_config) -> tfds.download.DownloadConfig | None:
  """Builders that read local files find them in `manual_dir` ('': the builder's)."""
  default = getattr(builder, 'DEFAULT_MANUAL_DIR', None)
  if default is None:
    return None
  return tfds.download.DownloadConfig(manual_dir=dataset_config.manual_dir or default)


def _is_prepared(builder) -> bool:
  return tf.io.gfile.exists(os.path.join(builder.data_dir, 'dataset_info.json'))


def num_examples(builder, split: str) -> int:
  """Number of examples of `split` (raises UserError for an unknown split)."""
  try:
    return builder.info.splits[split].num_examples
  except (KeyError, ValueError):
    raise UserError(f"dataset '{builder.name}' has no split '{split}'; it has "
                    f"{', '.join(builder.info.splits)}") from None


def load_arrays(builder, split: str) -> dict[str, np.ndarray]:
  """Reads a whole split into memory as {'image': uint8 NHWC, 'label': int32}."""
  num_examples(builder, split)
  ds = builder.as_dataset(split=split, shuffle_files=False, read_config=tfds.ReadConfig(
      try_autocache=False))
  ds = ds.map(lambda ex: {'image': ex['image'], 'label': ex['label']})
  data = tfds.as_numpy(ds.batch(4096).prefetch(1))
  chunks = list(data)
  return {
      'image': np.concatenate([c['image'] for c in chunks]),
      'label': np.concatenate([c['label'] for c in chunks]).astype(np.int32),
  }


def check_features(builder, config: ml_collections.ConfigDict) -> None:
  """Raises UserError unless the config's classes and channels match the dataset."""
  classes = builder.info.features['label'].num_classes
  if config.dataset.num_classes != classes:
    raise UserError(f"dataset '{builder.name}' has {classes} classes but "
                    f'dataset.num_classes={config.dataset.num_classes}; set '
                    f'--config.dataset.num_classes={classes}')
  channels = builder.info.features['image'].shape[-1]
  if config.input.channels != channels:
    raise UserError(f"dataset '{builder.name}' has {channels}-channel images but "
                    f'input.channels={config.input.channels}; set '
                    f'--config.input.channels={channels}')
