"""Reading and writing files of named tensors: .safetensors, and PyTorch state dicts.

`.safetensors` files are read and written with the safetensors package's numpy API, no
PyTorch needed. PyTorch files (`.pth`, `.pt`, `.bin`) are read with
`torch.load(..., weights_only=True)`, which unpickles tensors and plain containers only
and refuses arbitrary objects, so a file cannot run code; never plain pickle.
"""

import os
import sys

import numpy as np

from train_lib.errors import UserError

SAFETENSORS = ('.safetensors',)
TORCH = ('.pth', '.pt', '.bin')
# Training checkpoints of several repositories wrap the state dict in one of these.
WRAPPERS = ('state_dict', 'model', 'model_state')


def read_tensors(path: str) -> dict[str, np.ndarray]:
  """The tensors of a .safetensors file or a PyTorch state dict, as numpy arrays.

  Floating-point tensors come back as float32 whatever they were stored as. A PyTorch
  checkpoint that wraps its state dict under 'state_dict' or 'model' is unwrapped, and
  wrappers' key prefixes are dropped (`_unwrap_keys`).

  Raises:
    UserError: the file is missing, of an unknown kind, truncated or corrupt, or a
      PyTorch file when torch is not installed.
  """
  if not os.path.isfile(path):
    raise UserError(
      f'weights file {path} does not exist; set --config.init_from to a '
      '.safetensors or PyTorch .pth file'
    )
  ext = os.path.splitext(path)[1].lower()
  if ext in SAFETENSORS:
    return _unwrap_keys(_read_safetensors(path))
  if ext in TORCH:
    return _unwrap_keys(_read_torch(path))
  raise UserError(
    f'weights file {path} is neither .safetensors nor a PyTorch state dict '
    f'({", ".join(TORCH)}); rename it or convert it to .safetensors'
  )


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors import numpy as st_numpy

  try:
    tensors = st_numpy.load_file(path)
  except Exception as e:  # noqa: BLE001 - truncated and corrupt files fail many ways
    raise UserError(
      f'cannot read {path} as .safetensors ({type(e).__name__}: '
      f'{_first_line(e)}); the file is truncated or not a safetensors '
      'file (bfloat16 files: save them as float32)'
    ) from None
  return {k: _float32(v) for k, v in tensors.items()}


def _read_torch(path: str) -> dict[str, np.ndarray]:
  # Triton (GPU kernels of torch's compiler, unused here) crashes the process when its
  # LLVM loads beside jaxlib's and TensorFlow's; torch runs without it.
  sys.modules.setdefault('triton', None)
  try:
    import torch
  except ImportError:
    raise UserError(
      f'reading the PyTorch file {path} needs torch (pip install torch), '
      'or convert it to .safetensors where torch is installed'
    ) from None
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # noqa: BLE001
    raise UserError(
      f'cannot read {path} as a PyTorch state dict ({type(e).__name__}: '
      f'{_first_line(e)}); the file is truncated, not a PyTorch file, or '
      'holds objects other than tensors'
    ) from None
  for wrapper in WRAPPERS:
    if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
      obj = obj[wrapper]
      break
  if not isinstance(obj, dict):
    raise UserError(
      f'{path} holds a {type(obj).__name__}, not a state dict of tensors; '
      'save model.state_dict() rather than the model'
    )
  tensors = {}
  for key, value in obj.items():
    if isinstance(value, torch.Tensor):
      t = value.detach().cpu()
      tensors[key] = t.float().numpy() if t.is_floating_point() else t.numpy()
  return tensors


def _unwrap_keys(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Drops the prefixes of wrapped models: DataParallel's 'module.', and the 'model.'
  of HRNet-Semantic-Segmentation's FullModel, whose 'loss.*' tensors (the criterion's
  class weights) are not the network's."""
  full_model = any(k.removeprefix('module.').startswith('model.') for k in tensors)
  out = {}
  for key, value in tensors.items():
    key = key.removeprefix('module.')
    if full_model and key.startswith('loss.'):
      continue
    out[key.removeprefix('model.')] = value
  return out


def _float32(a: np.ndarray) -> np.ndarray:
  return a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a


def _first_line(e: Exception) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:200] if text else 'no detail'


def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
  """Writes `tensors` to a .safetensors file, atomically (never a half-written file).

  Raises:
    UserError: the name does not end in .safetensors, or the write failed.
  """
  if not path.endswith(SAFETENSORS):
    raise UserError(f'export file {path} must end in .safetensors')
  from safetensors import numpy as st_numpy

  directory = os.path.dirname(os.path.abspath(path))
  tmp = path + '.tmp'
  try:
    os.makedirs(directory, exist_ok=True)
    st_numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp)
    os.replace(tmp, path)
  except OSError as e:
    raise UserError(f'cannot write {path}: {e}') from None
