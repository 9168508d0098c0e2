"""HRNet's building blocks: branches of residual blocks, the multi-resolution module with
its fusion, and the transitions that add a stream (Wang et al. 2019, "Deep
High-Resolution Representation Learning for Visual Recognition", arXiv 1908.07919,
section 3 and Fig. 3; the layers of the HRNet repositories' `cls_hrnet.py`,
`seg_hrnet.py` and `pose_hrnet.py`, which timm's `hrnet.py` reproduces).

A *stream* (the code's *branch*) is a sequence of feature maps at one resolution; stream
i has 2^i times fewer pixels per side than stream 0. Every convolution has no bias and is
followed by BatchNorm unless a head says otherwise.

The residual blocks are ResNet's (models/resnet.py, the same layers and names as the
HRNet repositories' BasicBlock and Bottleneck: stride 1, a 1x1 conv + BN projection
where the channels change). Modules take their convolution and normalisation as
partials (`conv`, `norm`, from `resnet.conv_and_norm`), built once by the network with
the initialiser, dtypes and train mode, as flax's ImageNet example does; every
convolution pads by k // 2 on every side, as PyTorch's (`resnet.conv_kxk`).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.initializers import torch_bias_init
from models.resampling import resize_bilinear
from models.resnet import BLOCKS, conv_kxk

ModuleDef = Any


def _conv(conv: ModuleDef, x, features: int, kernel: int, strides: int, name: str, use_bias=False):
  """`conv_kxk`, with PyTorch's default bias where the layer has one."""
  if not use_bias:
    return conv_kxk(conv, x, features, kernel, strides, name)
  bias_init = torch_bias_init(kernel * kernel * x.shape[-1])
  return conv_kxk(conv, x, features, kernel, strides, name, use_bias=True, bias_init=bias_init)


class ConvBNChain(nn.Module):
  """kxk conv -> BN -> ReLU, repeated once per entry of `features` (`conv_k`, `bn_k`).

  Transitions, fusions and head layers are all such chains. `relu_last=False` leaves
  the last step without ReLU (the fusion's paths, whose ReLU comes after the sum).
  """

  features: Sequence[int]
  kernel: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  relu_last: bool = True
  use_bias: bool = False

  @nn.compact
  def __call__(self, x):
    for k, features in enumerate(self.features):
      x = _conv(self.conv, x, features, self.kernel, self.strides, f'conv_{k}', self.use_bias)
      x = self.norm(name=f'bn_{k}')(x)
      if self.relu_last or k < len(self.features) - 1:
        x = nn.relu(x)
    return x


class Branch(nn.Module):
  """`num_blocks` residual blocks at one resolution (`block_0`, `block_1`, ...)."""

  block: str  # a key of BLOCKS
  num_blocks: int
  planes: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x):
    for n in range(self.num_blocks):
      x = BLOCKS[self.block](self.planes, self.conv, self.norm, name=f'block_{n}')(x)
    return x


def upsample_nearest(x, factor: int):
  """Nearest-neighbour upsampling by an integer factor (PyTorch's nn.Upsample, exactly)."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class HighResolutionModule(nn.Module):
  """Parallel branches, then a fusion that gives every stream the sum of all (Fig. 3).

  Output stream i is ReLU(sum_j f_ij(x_j)) with f_ii the identity; `fuse_{i}_{j}`
  carries stream j to stream i:
  - j > i (lower to higher resolution): 1x1 conv + BN, then upsampling by 2^(j-i),
    nearest (classification and pose repos) or bilinear to stream i's size
    (segmentation repo);
  - j < i (higher to lower): i - j 3x3 stride-2 conv + BN, ReLU between them (not after
    the last); the intermediate ones keep stream j's channels.
  With `multi_scale_output=False` only stream 0 is fused and returned.
  """

  block: str
  num_blocks: Sequence[int]
  planes: Sequence[int]
  conv: ModuleDef
  norm: ModuleDef
  upsample: str = 'nearest'  # 'nearest' | 'bilinear'
  align_corners: bool = False  # for 'bilinear'
  multi_scale_output: bool = True

  @nn.compact
  def __call__(self, xs: Sequence[jax.Array]) -> list[jax.Array]:
    xs = [
      Branch(self.block, n, planes, self.conv, self.norm, name=f'branch_{b}')(x)
      for b, (x, n, planes) in enumerate(zip(xs, self.num_blocks, self.planes))
    ]
    if len(xs) == 1:
      return xs
    fused = []
    for i in range(len(xs) if self.multi_scale_output else 1):
      y = None
      for j, x in enumerate(xs):
        z = x if i == j else self._fuse(x, xs[i], i, j)
        y = z if y is None else y + z
      fused.append(nn.relu(y))
    return fused

  def _fuse(self, x, target, i: int, j: int):
    """Stream j's contribution to stream i (`target` gives the size and channels)."""
    c_i, c_j = target.shape[-1], x.shape[-1]
    if j > i:
      y = ConvBNChain((c_i,), 1, 1, self.conv, self.norm, relu_last=False, name=f'fuse_{i}_{j}')(x)
      if self.upsample == 'bilinear':
        return resize_bilinear(y, target.shape[1:3], self.align_corners)
      y = upsample_nearest(y, 2 ** (j - i))
      if y.shape[1:3] != target.shape[1:3]:
        raise ValueError(
          f'stream {j} upsampled to {y.shape[1:3]}, stream {i} is '
          f'{target.shape[1:3]}: nearest fusion needs input sides that '
          'are multiples of 32'
        )
      return y
    features = (c_j,) * (i - j - 1) + (c_i,)
    return ConvBNChain(features, 3, 2, self.conv, self.norm, relu_last=False, name=f'fuse_{i}_{j}')(
      x
    )


class Stage(nn.Module):
  """`num_modules` HighResolutionModules in sequence (`module_0`, `module_1`, ...)."""

  num_modules: int
  block: str
  num_blocks: Sequence[int]
  planes: Sequence[int]
  conv: ModuleDef
  norm: ModuleDef
  upsample: str = 'nearest'
  align_corners: bool = False
  multi_scale_output: bool = True  # of the last module

  @nn.compact
  def __call__(self, xs: Sequence[jax.Array]) -> list[jax.Array]:
    for m in range(self.num_modules):
      last = m == self.num_modules - 1
      xs = HighResolutionModule(
        self.block,
        self.num_blocks,
        self.planes,
        self.conv,
        self.norm,
        self.upsample,
        self.align_corners,
        self.multi_scale_output or not last,
        name=f'module_{m}',
      )(xs)
    return xs


class Transition(nn.Module):
  """From one stage's streams to the next's (`branch_{i}`): existing streams whose
  channels change get a 3x3 conv + BN + ReLU (others pass unchanged); each new stream
  is a chain of 3x3 stride-2 conv + BN + ReLU from the lowest-resolution stream, whose
  intermediate convs keep its channels."""

  channels: Sequence[int]  # of the next stage's streams
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, ys: Sequence[jax.Array]) -> list[jax.Array]:
    xs = []
    for i, c in enumerate(self.channels):
      if i < len(ys):
        x = ys[i]
        if x.shape[-1] != c:
          x = ConvBNChain((c,), 3, 1, self.conv, self.norm, name=f'branch_{i}')(x)
      else:
        features = (ys[-1].shape[-1],) * (i - len(ys)) + (c,)
        x = ConvBNChain(features, 3, 2, self.conv, self.norm, name=f'branch_{i}')(ys[-1])
      xs.append(x)
    return xs
