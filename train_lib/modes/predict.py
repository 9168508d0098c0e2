"""`--mode=predict`: classify image files, print the top classes, save the logits.

The weights are DIR's checkpoint (`--checkpoint`), or, when DIR holds none (or no
--workdir is given), the file of `config.init_from` imported on the fly. Images are
preprocessed as the evaluation does: with `input.eval_crop` 'center' (or 'ten_crop',
of which predict takes the central view) the shorter side is resized to
`input.eval_resize` and the central crop taken on the host as torchvision does
(input_pipeline/image_files.py); then the device's `preprocess.normalize` resizes (for
'none'), pads and normalises with `config.input`'s mean and std.
"""

import glob
import importlib.util
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import image_files, preprocess
from train_lib import checkpoint, setup, sharding, steps
from train_lib.errors import UserError
from train_lib.metrics_writer import info
from train_lib.modes import pretrained


def run(
  config: ml_collections.ConfigDict, workdir: str | None, which: str = 'latest'
) -> np.ndarray:
  """Classifies the files of `config.predict.images`; returns their logits (N, classes).

  Raises:
    UserError: no images match, an image does not read, no weights to use.
  """
  p = config.predict
  if not p.images:
    raise UserError(
      '--mode=predict needs --config.predict.images=GLOB, e.g. '
      "--config.predict.images='photos/*.jpg'"
    )
  files = sorted(glob.glob(os.path.expanduser(p.images), recursive=True))
  files = [f for f in files if os.path.isfile(f)]
  if not files:
    raise UserError(f'no file matches --config.predict.images={p.images}')
  mesh = sharding.create_mesh()
  model, variables = _weights(config, workdir, which, mesh)
  images = _load(files, config.input)
  logits = _logits(model, variables, images, config, mesh)
  _print_top_k(files, logits, class_names(p.class_names, logits.shape[1]), p.top_k)
  if p.output:
    os.makedirs(os.path.dirname(os.path.abspath(p.output)), exist_ok=True)
    np.savez(p.output, logits=logits, files=np.asarray(files))
    info(f'saved the logits of {len(files)} images to {p.output}')
  return logits


def _load(files: list[str], input_config) -> np.ndarray:
  """The images as the evaluation sees them (input.eval_crop; 'ten_crop': its centre)."""
  if input_config.eval_crop in ('center', 'ten_crop') and input_config.image_size:
    crop = (input_config.image_size, input_config.image_width or input_config.image_size)
    return image_files.load_images(files, input_config.channels, input_config.eval_resize, crop)
  return image_files.load_images(files, input_config.channels)


def _weights(config, workdir, which, mesh):
  """(model, variables) from DIR's checkpoint, else from `config.init_from`."""
  if checkpoint.exists(workdir):
    s, state = setup.restore_from(config, workdir, which, list(mesh.devices.flat))
    info(f'predicting with step {int(jax.device_get(state.step))} of {workdir}')
    return s.model, steps.model_variables(state)
  if not config.init_from:
    where = f'{workdir} holds no checkpoint' if workdir else 'no --workdir is given'
    raise UserError(
      f'{where}; give a --workdir with a checkpoint (--mode=convert or '
      'train writes one) or the weights as --config.init_from=FILE'
    )
  s, state, _ = pretrained.state_from_file(config, list(mesh.devices.flat))
  model, variables = s.model, steps.model_variables(state)
  info(f'predicting with the weights of {config.init_from}')
  return model, variables


def _logits(model, variables, images: np.ndarray, config, mesh) -> np.ndarray:
  """float32 logits of uint8 `images`, in batches of eval_batch_size over the mesh."""
  variables = {k: v for k, v in variables.items() if v}

  @jax.jit
  def forward(variables, batch):
    x = preprocess.normalize(batch, config.input, model.dtype)
    return model.apply(variables, x, train=False).astype(jnp.float32)

  n_dev = mesh.devices.size
  data = sharding.batch_sharding(mesh)
  out = []
  for start in range(0, len(images), config.eval_batch_size):
    batch = images[start : start + config.eval_batch_size]
    pad = -len(batch) % n_dev  # every device gets the same number of images
    padded = np.concatenate([batch, np.repeat(batch[:1], pad, 0)]) if pad else batch
    logits = forward(variables, jax.device_put(padded, data))
    out.append(np.asarray(jax.device_get(logits))[: len(batch)])
  return np.concatenate(out)


def class_names(which: str, num_classes: int) -> list[str]:
  """Names of the classes: see config.predict.class_names."""
  if which == 'index' or (which == 'auto' and num_classes != 1000):
    return [str(i) for i in range(num_classes)]
  if which in ('auto', 'imagenet'):
    names = imagenet_class_names()
  else:
    try:
      with open(which) as f:
        names = [line.strip() for line in f if line.strip()]
    except OSError as e:
      raise UserError(f'cannot read predict.class_names={which}: {e}') from None
  if len(names) != num_classes:
    raise UserError(
      f'{len(names)} class names for {num_classes} classes; set '
      "--config.predict.class_names='index' or give a matching file"
    )
  return names


def imagenet_class_names() -> list[str]:
  """The 1000 ImageNet classes in label order: WordNet ids, with names where known.

  The ids come from TFDS's imagenet2012 label file (in the installed package); the
  readable names from torchvision's weight metadata when torchvision is installed.
  """
  spec = importlib.util.find_spec('tensorflow_datasets')
  path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'imagenet2012', 'labels.txt')
  with open(path) as f:
    synsets = [line.strip() for line in f if line.strip()]
  try:
    from torchvision.models import ResNet18_Weights

    names = ResNet18_Weights.IMAGENET1K_V1.meta['categories']
  except ImportError:
    return synsets
  return [f'{name} ({synset})' for name, synset in zip(names, synsets)]


def _print_top_k(files: list[str], logits: np.ndarray, names: list[str], k: int):
  if jax.process_index():
    return
  probs = np.asarray(jax.nn.softmax(logits, axis=-1))
  for f, p in zip(files, probs):
    print(f, flush=False)
    for i in np.argsort(-p)[:k]:
      name = '' if names[i] == str(i) else f'  {names[i]}'
      print(f'  {p[i]:.4f}  {i:4d}{name}')
  print(end='', flush=True)
