"""Residual networks (He, Zhang, Ren and Sun 2015, "Deep residual learning for image
recognition", arXiv 1512.03385), for ImageNet (Table 1) and for CIFAR-10 (section 4.2).

ImageNet (`ResNet`, Table 1): a 7x7/2 convolution and a 3x3/2 max pool, then four
stages (`layer1`..`layer4`, 64/128/256/512 planes at strides 4/8/16/32) of BasicBlocks
(two 3x3 convolutions; ResNet-18/34) or Bottlenecks (1x1 reduce, 3x3, 1x1 expand by 4;
ResNet-50/101/152), global average pooling and a 1000-way fully connected layer.
Convolutions have no bias and each is followed by batch normalization (section 3.4).
Stages 2-4 halve the resolution in their first block. Two placements of that stride:

- v1.5 (`stride_on_3x3=True`, the default, as torchvision): on the Bottleneck's 3x3;
- v1 (`stride_on_3x3=False`, the paper and its Caffe models): on the first 1x1, which
  gives Table 1's FLOPs (3.8/7.6/11.3 x10^9 for 50/101/152).

BasicBlocks put it on their first 3x3 either way, so for 18/34 the two are one network.

Shortcuts (sections 3.3 and 4.1): 'A' zero-pads the identity where the channels grow
(and subsamples where the resolution halves), parameter-free; 'B' (the default, as
torchvision) projects with a 1x1 convolution + BN only where the shape changes; 'C'
projects in every block; 'none' removes them all, which gives the plain networks of
the degradation experiment (Fig. 4, Table 2).

CIFAR-10 (`CifarResNet`, section 4.2): a 3x3 convolution to 16 maps, then three stages
of n BasicBlocks with 16/32/64 planes at 32/16/8 pixels, average pooling and a 10-way
fully connected layer: 6n+2 weighted layers. The paper uses option 'A' there.

Initialization: convolutions He-normal with fan-out (He et al. 2015, "Delving deep into
rectifiers", as torchvision), BN scale 1 and offset 0 (or a zero scale on each block's
last BN with `zero_init_residual`, Goyal et al. 2017), and the classifier as
torchvision's `nn.Linear` default: weight and bias uniform in +-1/sqrt(fan_in).

Calling a model with `return_features=True` returns a dict of named features instead of
logits: 'stem', 'layer1'..'layer4' (ImageNet, strides 4/4/8/16/32) or 'layer1'..'layer3'
(CIFAR, strides 1/2/4), 'pre_logits' and 'logits', for dense heads.
"""

from functools import partial
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from models.batch_norm import torch_batch_norm
from models.conv import Conv
from models.initializers import he_normal_fan_out, torch_bias_init, torch_kernel_init
from models.pooling import max_pool

# Table 1: depth -> (block, blocks per stage).
IMAGENET_STAGES = {
  18: ('basic', (2, 2, 2, 2)),
  34: ('basic', (3, 4, 6, 3)),
  50: ('bottleneck', (3, 4, 6, 3)),
  101: ('bottleneck', (3, 4, 23, 3)),
  152: ('bottleneck', (3, 8, 36, 3)),
}

# Section 4.2: depth 6n+2 -> n, the BasicBlocks per stage.
CIFAR_BLOCKS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}

SHORTCUTS = ('A', 'B', 'C', 'none')

ModuleDef = Any


def conv_and_norm(
  train: bool,
  kernel_init=he_normal_fan_out,
  dtype: Any = jnp.float32,
  param_dtype: Any = jnp.float32,
):
  """The `conv` and `norm` partials the blocks are built from (as flax's ImageNet example).

  Bias-free convolutions initialised by `kernel_init`, each followed by BatchNorm with
  PyTorch's defaults (section 3.4); `train` picks batch or running statistics.
  """
  conv = partial(
    Conv, use_bias=False, kernel_init=kernel_init, dtype=dtype, param_dtype=param_dtype
  )
  return conv, torch_batch_norm(train, dtype=dtype, param_dtype=param_dtype)


def conv_kxk(conv: ModuleDef, x, features: int, kernel: int, strides: int, name: str, **fields):
  """`conv`'s kxk convolution of x, padded by k // 2 on every side as PyTorch's (flax's
  'SAME' would pad a stride-2 convolution on one side only)."""
  return conv(features, (kernel, kernel), strides, padding=kernel // 2, name=name, **fields)(x)


def shortcut(x, features: int, strides: int, option: str, conv: ModuleDef, norm: ModuleDef):
  """The block's shortcut branch (section 3.3); `None` when there is none ('none').

  Called inside the block's compact method, so the projection's layers are the
  block's `downsample_conv` and `downsample_bn` (torchvision's `downsample.0` and `.1`).
  """
  if option not in SHORTCUTS:
    raise ValueError(f"shortcut must be one of {SHORTCUTS}, got '{option}'")
  if option == 'none':
    return None
  reshape = strides != 1 or x.shape[-1] != features
  if option == 'C' or (option == 'B' and reshape):
    return norm(name='downsample_bn')(conv_kxk(conv, x, features, 1, strides, 'downsample_conv'))
  if option == 'A' and reshape:
    # Identity with extra zero channels, split over both sides as in the common
    # PyTorch port (akamaster/pytorch_resnet_cifar10): planes // 4 each for 16->32.
    y = x[:, ::strides, ::strides, :]
    extra = features - x.shape[-1]
    return jnp.pad(y, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
  return x


def _last_norm(block: nn.Module) -> ModuleDef:
  """The norm of the block's last BN: a zero scale with `zero_init_residual`."""
  if block.zero_init_residual:
    return partial(block.norm, scale_init=nn.initializers.zeros)
  return block.norm


class BasicBlock(nn.Module):
  """Two 3x3 convolutions and a shortcut (Fig. 2, left)."""

  features: int
  conv: ModuleDef  # the partials of `conv_and_norm`
  norm: ModuleDef
  strides: int = 1
  shortcut: str = 'B'
  stride_on_3x3: bool = True  # unused: the stride is on the first 3x3 anyway
  zero_init_residual: bool = False

  expansion = 1

  @nn.compact
  def __call__(self, x):
    y = conv_kxk(self.conv, x, self.features, 3, self.strides, 'conv1')
    y = nn.relu(self.norm(name='bn1')(y))
    y = conv_kxk(self.conv, y, self.features, 3, 1, 'conv2')
    y = _last_norm(self)(name='bn2')(y)
    residual = shortcut(x, self.features, self.strides, self.shortcut, self.conv, self.norm)
    return nn.relu(y if residual is None else y + residual)


class Bottleneck(nn.Module):
  """1x1 reduce, 3x3, 1x1 expand by 4, and a shortcut (Fig. 5, right)."""

  features: int  # the 3x3's planes; the block outputs 4x as many
  conv: ModuleDef  # the partials of `conv_and_norm`
  norm: ModuleDef
  strides: int = 1
  shortcut: str = 'B'
  stride_on_3x3: bool = True  # v1.5 (torchvision); False: on the first 1x1 (v1, paper)
  zero_init_residual: bool = False

  expansion = 4

  @nn.compact
  def __call__(self, x):
    out = self.features * self.expansion
    s1, s3 = (1, self.strides) if self.stride_on_3x3 else (self.strides, 1)
    y = conv_kxk(self.conv, x, self.features, 1, s1, 'conv1')
    y = nn.relu(self.norm(name='bn1')(y))
    y = conv_kxk(self.conv, y, self.features, 3, s3, 'conv2')
    y = nn.relu(self.norm(name='bn2')(y))
    y = conv_kxk(self.conv, y, out, 1, 1, 'conv3')
    y = _last_norm(self)(name='bn3')(y)
    residual = shortcut(x, out, self.strides, self.shortcut, self.conv, self.norm)
    return nn.relu(y if residual is None else y + residual)


BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}


def stage(x, block: type[nn.Module], num_blocks: int, features: int, strides: int, name: str, **kw):
  """`num_blocks` blocks named `{name}_0`, `{name}_1` ...; the first one downsamples."""
  for j in range(num_blocks):
    x = block(features, strides=strides if j == 0 else 1, name=f'{name}_{j}', **kw)(x)
  return x


def classifier(x, num_classes: int, dtype: Any, param_dtype: Any):
  """Global average pooling and the fully connected `fc`; returns (pooled, logits)."""
  pooled = jnp.mean(x, axis=(1, 2))
  logits = nn.Dense(
    num_classes,
    kernel_init=torch_kernel_init,
    bias_init=torch_bias_init(pooled.shape[-1]),
    dtype=dtype,
    param_dtype=param_dtype,
    name='fc',
  )(pooled)
  return pooled, logits.astype(jnp.float32)


class ResNet(nn.Module):
  """ImageNet ResNet of Table 1 (or its plain twin with `shortcut='none'`)."""

  depth: int
  num_classes: int = 1000
  shortcut: str = 'B'
  stride_on_3x3: bool = True
  zero_init_residual: bool = False
  width: int = 64  # planes of the first stage (64 in the paper); smaller for tests
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    if self.depth not in IMAGENET_STAGES:
      raise ValueError(f'ResNet depth must be one of {tuple(IMAGENET_STAGES)}, got {self.depth}')
    dt, pdt = self.dtype, self.param_dtype
    block_name, sizes = IMAGENET_STAGES[self.depth]
    conv, norm = conv_and_norm(train, he_normal_fan_out, dt, pdt)
    feats = {}
    x = conv_kxk(conv, x.astype(dt), self.width, 7, 2, 'conv1')
    x = nn.relu(norm(name='bn1')(x))
    x = feats['stem'] = max_pool(x, 3, 2, padding=1)
    for i, n in enumerate(sizes):
      x = feats[f'layer{i + 1}'] = stage(
        x,
        BLOCKS[block_name],
        n,
        self.width * 2**i,
        1 if i == 0 else 2,
        f'layer{i + 1}',
        conv=conv,
        norm=norm,
        shortcut=self.shortcut,
        stride_on_3x3=self.stride_on_3x3,
        zero_init_residual=self.zero_init_residual,
      )
    feats['pre_logits'], feats['logits'] = classifier(x, self.num_classes, dt, pdt)
    return feats if return_features else feats['logits']


class CifarResNet(nn.Module):
  """CIFAR ResNet of section 4.2: depth 6n+2, 16/32/64 planes (or plain, 'none')."""

  depth: int
  num_classes: int = 10
  shortcut: str = 'A'
  zero_init_residual: bool = False
  width: int = 16  # planes of the first stage (16 in the paper)
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    if self.depth not in CIFAR_BLOCKS:
      raise ValueError(f'CIFAR ResNet depth must be one of {tuple(CIFAR_BLOCKS)}, got {self.depth}')
    dt, pdt = self.dtype, self.param_dtype
    n = CIFAR_BLOCKS[self.depth]
    conv, norm = conv_and_norm(train, he_normal_fan_out, dt, pdt)
    feats = {}
    x = conv_kxk(conv, x.astype(dt), self.width, 3, 1, 'conv1')
    x = feats['stem'] = nn.relu(norm(name='bn1')(x))
    for i in range(3):
      x = feats[f'layer{i + 1}'] = stage(
        x,
        BasicBlock,
        n,
        self.width * 2**i,
        1 if i == 0 else 2,
        f'layer{i + 1}',
        conv=conv,
        norm=norm,
        shortcut=self.shortcut,
        zero_init_residual=self.zero_init_residual,
      )
    feats['pre_logits'], feats['logits'] = classifier(x, self.num_classes, dt, pdt)
    return feats if return_features else feats['logits']


MODELS = {
  # ImageNet, Table 1; v1.5 (torchvision) unless named _v1.
  'resnet18': partial(ResNet, depth=18),
  'resnet34': partial(ResNet, depth=34),
  'resnet50': partial(ResNet, depth=50),
  'resnet101': partial(ResNet, depth=101),
  'resnet152': partial(ResNet, depth=152),
  'resnet50_v1': partial(ResNet, depth=50, stride_on_3x3=False),
  'resnet101_v1': partial(ResNet, depth=101, stride_on_3x3=False),
  'resnet152_v1': partial(ResNet, depth=152, stride_on_3x3=False),
  # The plain nets of the degradation experiment (Table 2).
  'plain18': partial(ResNet, depth=18, shortcut='none'),
  'plain34': partial(ResNet, depth=34, shortcut='none'),
  # CIFAR-10, section 4.2; option A shortcuts unless given `shortcut='B'`.
  'cifar_resnet20': partial(CifarResNet, depth=20),
  'cifar_resnet32': partial(CifarResNet, depth=32),
  'cifar_resnet44': partial(CifarResNet, depth=44),
  'cifar_resnet56': partial(CifarResNet, depth=56),
  'cifar_resnet110': partial(CifarResNet, depth=110),
  'cifar_resnet1202': partial(CifarResNet, depth=1202),
  'cifar_plain20': partial(CifarResNet, depth=20, shortcut='none'),
  'cifar_plain32': partial(CifarResNet, depth=32, shortcut='none'),
  'cifar_plain44': partial(CifarResNet, depth=44, shortcut='none'),
  'cifar_plain56': partial(CifarResNet, depth=56, shortcut='none'),
  'cifar_plain110': partial(CifarResNet, depth=110, shortcut='none'),
}
