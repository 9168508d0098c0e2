"""HRNet names of the HRNet repositories (cls_hrnet.py, seg_hrnet.py, pose_hrnet.py)
and timm's hrnet_w18_small..hrnet_w64, which reproduces the first.

Ours group layers under `backbone` and `head` and name list entries (`block_N`,
`module_M`, `branch_B`, `fuse_I_J`, `conv_K` / `bn_K`); PyTorch indexes Sequentials:

  backbone/layer1/block_N/...                 layer1.N....
  backbone/transitionT/branch_I/conv_0, bn_0  transitionT.I.0, .1 (stream I exists)
  backbone/transitionT/branch_I/conv_K, bn_K  transitionT.I.K.0, .1 (a new stream)
  backbone/stageS/module_M/branch_B/block_N   stageS.M.branches.B.N
  backbone/stageS/module_M/fuse_I_J/conv_0    stageS.M.fuse_layers.I.J.0 (J > I, upsample)
  backbone/stageS/module_M/fuse_I_J/conv_K    stageS.M.fuse_layers.I.J.K.0 (J < I)
  head/incre_I/block_0, head/downsamp_I       incre_modules.I.0, downsamp_modules.I
  head/final_layer/conv_0, bn_0; classifier   final_layer.0, .1; classifier (cls)
  head/last_layer/conv_0, bn_0; classifier    last_layer.0, .1; last_layer.3 (seg)
  head/final_layer                            final_layer (pose)

BatchNorm eps is 1e-5 in all of them and in models/hrnet.py.
"""

import re

from models import hrnet
from models.torch_weights.naming import Family

BLOCK_PARTS = {'downsample_conv': 'downsample.0', 'downsample_bn': 'downsample.1'}


def _index(name: str) -> str:
  """'block_3' -> '3'."""
  return name.rsplit('_', 1)[1]


def _pair(name: str) -> tuple[str, str]:
  """'conv_K' -> (K, '0'), 'bn_K' -> (K, '1'): a (conv, BN, ReLU) Sequential's layers."""
  kind, k = name.split('_')
  return k, '0' if kind == 'conv' else '1'


def _block(parts) -> str:
  return '.'.join(BLOCK_PARTS.get(p, p) for p in parts)


def _backbone(path) -> str:
  top, *rest = path
  if top == 'layer1':
    return f'layer1.{_index(rest[0])}.{_block(rest[1:])}'
  if top.startswith('transition'):
    t, i = int(top.removeprefix('transition')), int(_index(rest[0]))
    k, layer = _pair(rest[1])
    # Stage t has t streams: the transition adapts those and adds stream t.
    return f'{top}.{i}.{layer}' if i < t else f'{top}.{i}.{k}.{layer}'
  if top.startswith('stage'):
    m, (what, *more) = _index(rest[0]), rest[1:]
    if what.startswith('branch_'):
      return f'{top}.{m}.branches.{_index(what)}.{_index(more[0])}.{_block(more[1:])}'
    i, j = map(int, re.fullmatch(r'fuse_(\d+)_(\d+)', what).groups())
    k, layer = _pair(more[0])
    prefix = f'{top}.{m}.fuse_layers.{i}.{j}'
    return f'{prefix}.{layer}' if j > i else f'{prefix}.{k}.{layer}'
  return top  # conv1, bn1, conv2, bn2


def _head(model, path) -> str:
  top, *rest = path
  if top.startswith('incre_'):
    return f'incre_modules.{_index(top)}.{_index(rest[0])}.{_block(rest[1:])}'
  if top.startswith('downsamp_'):
    return f'downsamp_modules.{_index(top)}.{_pair(rest[0])[1]}'
  if top in ('final_layer', 'last_layer') and rest:
    return f'{top}.{_pair(rest[0])[1]}'
  if top == 'classifier' and isinstance(model, hrnet.HRNetV2Seg):
    return 'last_layer.3'
  return top  # classifier (cls), final_layer (pose)


def _module_name(model, path) -> str:
  part, *rest = path
  return _backbone(rest) if part == 'backbone' else _head(model, rest)


FAMILY = Family('HRNet repositories or timm hrnet_*', _module_name, lambda model: {})
