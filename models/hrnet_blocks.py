"""HRNet's building blocks: residual blocks, branches, the multi-resolution module with
its fusion, and the transitions that add a stream (Wang et al. 2019, "Deep
High-Resolution Representation Learning for Visual Recognition", arXiv 1908.07919,
section 3 and Fig. 3; the layers of the HRNet repositories' `cls_hrnet.py`,
`seg_hrnet.py` and `pose_hrnet.py`, which timm's `hrnet.py` reproduces).

A *stream* (the code's *branch*) is a sequence of feature maps at one resolution; stream
i has 2^i times fewer pixels per side than stream 0. Every convolution has no bias and is
followed by BatchNorm unless a head says otherwise.

Blocks take their convolution and normalisation as partials (`conv`, `norm`), built once
by the network with the initialiser, dtypes and train mode, as flax's ImageNet example
does; every convolution is called as `conv(features, (k, k), strides, padding=k // 2)`,
PyTorch's symmetric padding (flax's 'SAME' would pad a stride-2 conv on one side only).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.resampling import resize_bilinear

ModuleDef = Any


def torch_bias_init(fan_in: int):
  """PyTorch's default bias initialiser of a conv or linear layer: U(+-1/sqrt(fan_in)).

  The HRNet repositories initialise only the weights, so their biased layers keep it.
  """
  limit = fan_in**-0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -limit, limit)

  return init


def _conv(
  conv: ModuleDef, x, features: int, kernel: int, strides: int, name: str, use_bias: bool = False
):
  """A kxk convolution with PyTorch's padding k // 2 (and its default bias init)."""
  bias = {}
  if use_bias:
    bias = dict(use_bias=True, bias_init=torch_bias_init(kernel * kernel * x.shape[-1]))
  return conv(features, (kernel, kernel), strides, padding=kernel // 2, name=name, **bias)(x)


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


def _shortcut(block: nn.Module, x, features: int):
  """Identity, or a 1x1 conv + BN projection where the channels change."""
  if x.shape[-1] == features:
    return x
  x = _conv(block.conv, x, features, 1, 1, 'downsample_conv')
  return block.norm(name='downsample_bn')(x)


class BasicBlock(nn.Module):
  """Two 3x3 convolutions and a shortcut (He et al. 2015, Fig. 2)."""

  planes: int
  conv: ModuleDef
  norm: ModuleDef

  expansion = 1

  @nn.compact
  def __call__(self, x):
    y = nn.relu(self.norm(name='bn1')(_conv(self.conv, x, self.planes, 3, 1, 'conv1')))
    y = self.norm(name='bn2')(_conv(self.conv, y, self.planes, 3, 1, 'conv2'))
    return nn.relu(y + _shortcut(self, x, self.planes))


class Bottleneck(nn.Module):
  """1x1 reduce, 3x3, 1x1 expand by 4, and a shortcut (He et al. 2015, Fig. 5)."""

  planes: int
  conv: ModuleDef
  norm: ModuleDef

  expansion = 4

  @nn.compact
  def __call__(self, x):
    out = self.planes * self.expansion
    y = nn.relu(self.norm(name='bn1')(_conv(self.conv, x, self.planes, 1, 1, 'conv1')))
    y = nn.relu(self.norm(name='bn2')(_conv(self.conv, y, self.planes, 3, 1, 'conv2')))
    y = self.norm(name='bn3')(_conv(self.conv, y, out, 1, 1, 'conv3'))
    return nn.relu(y + _shortcut(self, x, out))


BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}


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
