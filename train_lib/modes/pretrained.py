"""PyTorch tensors -> our variables (strictly checked) and back, by the family mappings.

`load` fills a model's `params` and `batch_stats` from a dict of named tensors (see
`weight_files.read_tensors`) through `models.torch_weights`; `export` is its inverse.
Strict loading requires every tensor of the file to be used and every array of the
model to be filled with a tensor of the right shape, and otherwise names the first
mismatch. Non-strict loading fills what fits and leaves the rest at its initialisation
(a new classifier head), saying which; it also fits an RGB input convolution to
1-channel images by summing its kernel over the colours.
"""

import dataclasses

import jax
import ml_collections
import numpy as np
from flax import traverse_util

from models import torch_weights
from models.torch_weights import layouts
from train_lib import setup
from train_lib.errors import UserError
from train_lib.modes import weight_files

COLLECTIONS = ('params', 'batch_stats')


@dataclasses.dataclass
class LoadReport:
  """What `load` did: PyTorch keys loaded, our parameters left as they were, unused."""

  loaded: list[str]
  adapted: list[str]  # '<torch key> <file shape> -> <shape loaded>'
  not_loaded: list[str]  # '<torch key> <expected shape> (<why>)'
  unused: list[str]  # '<torch key> <shape>'


def _shape(shape) -> str:
  return str(tuple(int(d) for d in shape))


def _flat(variables) -> dict[tuple, np.ndarray]:
  return traverse_util.flatten_dict({c: variables[c] for c in COLLECTIONS if variables.get(c)})


def flat_shapes(variables) -> dict[tuple, tuple]:
  """{(collection, *path): shape} of `params` and `batch_stats` (arrays or abstract)."""
  return {p: tuple(a.shape) for p, a in _flat(variables).items()}


def load(
  model,
  shapes: dict[tuple, tuple],
  tensors: dict[str, np.ndarray],
  *,
  strict: bool,
  source: str,
  model_name: str,
) -> tuple[dict, LoadReport]:
  """Our arrays from the tensors of a PyTorch state dict.

  Args:
    model: the flax module.
    shapes: {(collection, *path): shape} of its flattened `params` and `batch_stats`
      (`flat_shapes`).
    tensors: PyTorch key -> numpy array, as in the file.
    strict: raise on any tensor left unused, any array not filled, any shape mismatch.
    source: the file's name, for messages.
    model_name: config.model.name, for messages.

  Returns:
    ({path: float32 array} for every array that was loaded, report); the others keep
    their initialisation (only when not `strict`).

  Raises:
    UserError: a mismatch when `strict`; nothing fits at all otherwise.
  """
  mapped, expected = check(
    model, shapes, tensors, strict=strict, source=source, model_name=model_name
  )
  out, loaded, adapted = {}, [], []
  for path, entry in mapped.items():
    key, layout = entry.key, entry.layout
    tensor = tensors.get(key)
    if tensor is not None and tuple(tensor.shape) != expected[key] and not strict:
      tensor = _gray_input_conv(tensor, expected[key], layout)
      if tensor is not None:
        adapted.append(f'{key} {_shape(tensors[key].shape)} -> {_shape(tensor.shape)}')
    if tensor is not None and tuple(tensor.shape) == expected[key]:
      out[path] = np.ascontiguousarray(layout.to_ours(tensor), dtype=np.float32)
      loaded.append(key)
  loaded_set, counters = set(loaded), set(torch_weights.bn_counter_keys(mapped))
  report = LoadReport(
    loaded=loaded,
    adapted=adapted,
    not_loaded=[
      f'{k} {_shape(expected[k])} ('
      + (f'file: {_shape(tensors[k].shape)})' if k in tensors else 'not in the file)')
      for k in expected
      if k not in loaded_set
    ],
    unused=[
      f'{k} {_shape(t.shape)}'
      for k, t in tensors.items()
      if k not in expected and k not in counters
    ],
  )
  return out, report


def natural_order(key: str) -> tuple:
  """Sort key: 'layer2.10.conv1' after 'layer2.9.conv1' (numbers compare as numbers)."""
  return tuple((0, int(p), '') if p.isdigit() else (1, 0, p) for p in key.split('.'))


def _gray_input_conv(tensor, expected, layout):
  """An RGB input convolution for 1-channel images: its kernel summed over R, G, B.

  A gray image fed as three equal channels gives exactly this convolution (timm adapts
  `in_chans=1` the same way). Anything else that differs: None.
  """
  if (
    isinstance(layout, layouts.Conv)
    and len(expected) == 4
    and expected[1] == 1
    and tuple(tensor.shape) == (expected[0], 3, *expected[2:])
  ):
    return tensor.sum(axis=1, keepdims=True)
  return None


def check(
  model,
  shapes: dict[tuple, tuple],
  tensors: dict[str, np.ndarray],
  *,
  strict: bool,
  source: str,
  model_name: str,
):
  """Checks the file's tensors against our variables' shapes, before anything is built.

  Args:
    model: the flax module.
    shapes: {(collection, *path): shape} of the flattened `params` and `batch_stats`.
    tensors: PyTorch key -> array.
    strict: any mismatch is an error; otherwise only a file of which nothing fits.
    source: the file's name, for messages.
    model_name: config.model.name, for messages.

  Returns:
    ({path: Entry}, {PyTorch key: the shape the model needs, in PyTorch's layout}).

  Raises:
    UserError: naming the first mismatch (strict), or that nothing fits.
  """
  mapped = torch_weights.entries(model, shapes)
  expected = {e.key: e.layout.torch_shape(shapes[p]) for p, e in mapped.items()}
  counters = set(torch_weights.bn_counter_keys(mapped))
  # In one order whatever the file's (safetensors sorts its keys, torch.save does not).
  keys = sorted(tensors, key=natural_order)
  wrong = [
    (k, expected[k], tensors[k].shape)
    for k in keys
    if k in expected and tuple(tensors[k].shape) != expected[k]
  ]
  missing = sorted((k for k in expected if k not in tensors), key=natural_order)
  unused = [k for k in keys if k not in expected and k not in counters]
  problems = (wrong, missing, unused, tensors, expected)
  if strict and (wrong or missing or unused):
    raise UserError(_mismatch_message(source, model_name, *problems))
  if len(wrong) + len(missing) == len(expected):
    raise UserError(
      f'no tensor of {source} fits {model_name} (e.g. '
      f'{_first_problem(*problems)}); it holds weights of another '
      'architecture: check --config.model.name'
    )
  return mapped, expected


def _first_problem(wrong, missing, unused, tensors, expected) -> str:
  if wrong:
    key, want, found = wrong[0]
    return f"tensor '{key}' has shape {_shape(found)}, the model needs {_shape(want)}"
  if missing:
    key = missing[0]
    return f"the model's '{key}' {_shape(expected[key])} is not in the file"
  key = unused[0]
  return f"the file's '{key}' {_shape(tensors[key].shape)} has no place in the model"


def _mismatch_message(source, model_name, wrong, missing, unused, tensors, expected) -> str:
  counts = [
    f'{n} {what}'
    for n, what in (
      (len(wrong), 'of another shape'),
      (len(missing), 'missing from the file'),
      (len(unused), 'unused'),
    )
    if n
  ]
  return (
    f'{source} does not fit {model_name}: '
    f'{_first_problem(wrong, missing, unused, tensors, expected)} '
    f'({", ".join(counts)}); check --config.model.name and its fields against the '
    'file, or set --config.init_from_strict=false to load what fits and keep the '
    "model's initialisation elsewhere (a new head)"
  )


def export(model, variables: dict) -> dict[str, np.ndarray]:
  """Our variables as a PyTorch state dict of the family's source library.

  BatchNorm's `num_batches_tracked` (a training counter we do not keep) is written as
  0, so `load_state_dict(strict=True)` accepts the result.
  """
  flat = _flat(variables)
  mapped = torch_weights.entries(model, {p: np.shape(a) for p, a in flat.items()})
  tensors = {
    e.key: np.ascontiguousarray(e.layout.to_torch(np.asarray(flat[p], np.float32)))
    for p, e in mapped.items()
  }
  for key in torch_weights.bn_counter_keys(mapped):
    tensors[key] = np.zeros((), np.int64)
  return tensors


def state_from_file(config: ml_collections.ConfigDict, devices=None):
  """A step-0 train state with `config.init_from`'s weights, replicated over `devices`.

  The file is read and checked before anything compiles. Arrays the file does not fill
  (non-strict loading) get the config's initialisation; XLA drops the initialisers of
  the others from the compiled program, so a strict import compiles quickly.

  Returns:
    (setup.Setup, state, LoadReport).

  Raises:
    UserError: the file does not read, or does not fit the model.
  """
  tensors = weight_files.read_tensors(config.init_from)
  s = setup.create(
    config,
    devices=devices,
    stored_image_shape=setup.stored_image_shape(config),
    initialize=False,
  )
  loaded, report = load(
    s.model,
    flat_shapes({'params': s.state.params, 'batch_stats': s.state.batch_stats}),
    tensors,
    strict=config.init_from_strict,
    source=config.init_from,
    model_name=config.model.name,
  )

  def build(loaded):
    state = s.init_state()
    flat = traverse_util.flatten_dict({'params': state.params, 'batch_stats': state.batch_stats})
    flat.update({p: v.astype(flat[p].dtype) for p, v in loaded.items()})
    variables = traverse_util.unflatten_dict(flat)
    params = variables['params']
    return state.replace(
      params=params, batch_stats=variables.get('batch_stats', {}), opt_state=s.tx.init(params)
    )

  state = jax.jit(build, out_shardings=s.state_sharding)(loaded)
  return s, state, report
