"""Our parameter names and layouts <-> PyTorch state-dict keys, per model family.

A family file says, for each of our module paths, which PyTorch module it is (and, where
not implied by the array's rank, the layout); this file turns that into one entry per
array of our variables. Leaves map alike in every family:

  params/.../kernel        -> <module>.weight  (layout by rank: Conv or Dense)
  params/.../bias          -> <module>.bias
  params/.../scale         -> <module>.weight  (BatchNorm)
  batch_stats/.../mean|var -> <module>.running_mean|running_var

Reading files and checking them strictly is the training library's job (its pretrained
mode). `entries` (and `family_of`) raise `WeightsError`, a ValueError, for a model that
has no PyTorch counterpart to map.
"""

import dataclasses
from typing import Any

from models import alexnet, googlenet, hrnet, registry, resnet, u2net, unet, vgg
from models.torch_weights import (
  alexnet_vgg_names,
  googlenet_names,
  hrnet_names,
  layouts,
  resnet_names,
  u2net_names,
  unet_names,
)
from models.torch_weights.naming import Family, WeightsError

__all__ = ['Entry', 'WeightsError', 'bn_counter_keys', 'entries', 'family_of', 'mapped_model_names']

LEAVES = {
  ('params', 'kernel'): 'weight',
  ('params', 'bias'): 'bias',
  ('params', 'scale'): 'weight',
  ('batch_stats', 'mean'): 'running_mean',
  ('batch_stats', 'var'): 'running_var',
}
# PyTorch's BatchNorm counts its training steps; evaluation never reads the counter.
BN_COUNTER = 'num_batches_tracked'


FAMILIES: dict[type, Family] = {
  alexnet.AlexNet: alexnet_vgg_names.ALEXNET,
  vgg.VGG: alexnet_vgg_names.VGG,
  googlenet.GoogLeNet: googlenet_names.FAMILY,
  resnet.ResNet: resnet_names.FAMILY,
  hrnet.HRNet: hrnet_names.FAMILY,
  hrnet.HRNetV2Seg: hrnet_names.FAMILY,
  hrnet.PoseHRNet: hrnet_names.FAMILY,
  unet.UNet: unet_names.FAMILY,
  u2net.U2Net: u2net_names.FAMILY,
}


@dataclasses.dataclass(frozen=True)
class Entry:
  """Where one of our arrays lives in a PyTorch state dict."""

  key: str
  layout: Any


def mapped_model_names() -> list[str]:
  """The registry names whose class has a PyTorch mapping."""
  return sorted(
    name for name, ctor in registry.MODELS.items() if getattr(ctor, 'func', ctor) in FAMILIES
  )


def family_of(model) -> Family:
  """The mapping of `model`'s class; raises WeightsError if there is none."""
  family = FAMILIES.get(type(model))
  if family is None:
    raise WeightsError(
      f'no PyTorch weight mapping for {type(model).__name__}; models with '
      f'one: {", ".join(mapped_model_names())}'
    )
  return family


def entries(model, shapes: dict[tuple, tuple]) -> dict[tuple, Entry]:
  """The PyTorch key and layout of each array of our variables.

  Args:
    model: the flax module (its fields decide e.g. VGG's layer indices).
    shapes: {(collection, *module path, leaf): shape}, the flattened variables.

  Returns:
    {the same paths: Entry}, in the order of `shapes`.

  Raises:
    WeightsError: `model` (its class or this variant) has no PyTorch counterpart.
  """
  family = family_of(model)
  overrides = family.layouts(model)
  result = {}
  for path, shape in shapes.items():
    collection, *modules, leaf = path
    if (collection, leaf) not in LEAVES:
      raise WeightsError(f'no PyTorch name for {"/".join(path)}')
    module = family.module_name(model, tuple(modules))
    layout = overrides.get(module) if leaf == 'kernel' else None
    if layout is None:
      rank = len(shape)
      layout = (
        layouts.Conv()
        if rank == 4 and leaf == 'kernel'
        else layouts.Dense()
        if rank == 2 and leaf == 'kernel'
        else layouts.Same()
      )
    result[path] = Entry(f'{module}.{LEAVES[collection, leaf]}', layout)
  return result


def bn_counter_keys(mapped: dict[tuple, Entry]) -> list[str]:
  """The `num_batches_tracked` keys of the BatchNorms among `mapped`."""
  return [
    e.key.removesuffix('running_mean') + BN_COUNTER
    for path, e in mapped.items()
    if path[0] == 'batch_stats' and path[-1] == 'mean'
  ]
