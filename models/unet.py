"""U-Net (Ronneberger, Fischer and Brox 2015, "U-Net: convolutional networks for
biomedical image segmentation", arXiv 1505.04597, Fig. 1 and section 2), in two forms.

`unet` is the paper's network: a contracting path of units of two unpadded ("valid")
3x3 convolutions with bias, each followed by ReLU, and 2x2/2 max pooling, doubling the
maps from 64 to 1024; an expansive path where each step is a 2x2 up-convolution
(transposed, stride 2) halving the maps, a concatenation with the centre crop of the
contracting path's map at that level, and two valid 3x3 convolutions; a final 1x1
convolution to the classes. 23 convolutions; a 572x572 tile gives 388x388 logits
(570 568 | 284 282 280 | 140 138 136 | 68 66 64 | 32 30 28, then 56 52 | 104 100 |
200 196 | 392 388), and every map before a pool must have an even size. 31,030,658
parameters with 1 input channel and 2 classes. Drop-out at the end of the contracting
path (section 3.1, which gives no rate; 0.5 here) and weights N(0, sqrt(2 / N)), N the
inputs of a unit, e.g. 9 * 64 for a 3x3 conv on 64 maps (section 3: He-normal, fan-in).

`unet_same` is the common same-padding form (milesial/Pytorch-UNet): every 3x3 conv has
padding 1 and no bias and is followed by BatchNorm; the upsampled map is zero-padded to
its skip's size, so the logits have the input's size (and any input size works, with
floor pooling). Up-sampling is `up='transpose'` (2x2/2 transposed conv halving the
maps: 31,037,698 parameters at 3 -> 2, milesial with bias=False) or `up='bilinear'`
(x2, align_corners=True, no parameters; the bottom unit then has half the maps and
each up step's first conv halves them, as milesial's `bilinear=True`). `base_width`
(64) and `depth` (number of poolings, 4) shrink it for CPU runs, e.g. 16 and 3.

Module names follow milesial's, so its state dicts convert mechanically: `inc`,
`down{k}` (torch `down{k}.maxpool_conv.1`), `up{k}.up` (the transposed conv, PyTorch
weight (in, out, kh, kw) -> kernel (kh, kw, in, out)), `up{k}.conv`, `outc` (torch
`outc.conv`); inside a double conv, torch `double_conv.0/1/3/4` are `conv1/bn1/conv2/
bn2`. `up1` is the deepest up step. The concatenation is [skip, upsampled], as there.
"""

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from models.batch_norm import torch_batch_norm
from models.conv import Conv
from models.initializers import he_normal_fan_in as he_normal  # section 3: sqrt(2 / N)
from models.layers import center_crop
from models.pooling import max_pool
from models.resampling import ConvTranspose2d, resize_bilinear


class DoubleConv(nn.Module):
  """(3x3 conv -> [BatchNorm] -> ReLU) x 2: the paper's unit or milesial's DoubleConv."""

  features: int
  mid_features: int | None = None  # the first conv's maps (default: `features`)
  padding: int = 1  # 0 for the paper's valid convolutions
  batch_norm: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    widths = (self.mid_features or self.features, self.features)
    norm = torch_batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype)
    for i, features in enumerate(widths, 1):
      x = Conv(
        features,
        (3, 3),
        padding=self.padding,
        use_bias=not self.batch_norm,
        kernel_init=he_normal,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=f'conv{i}',
      )(x)
      if self.batch_norm:
        x = norm(name=f'bn{i}')(x)
      x = nn.relu(x)
    return x


class Up(nn.Module):
  """One expansive step: up-sample, join the skip ([skip, up]), then a DoubleConv."""

  features: int
  mid_features: int | None = None
  up: str = 'transpose'  # or 'bilinear'
  valid: bool = False  # the paper: crop the skip; otherwise pad the up-sampled map
  batch_norm: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, skip, *, train: bool):
    if self.up == 'transpose':  # "2x2 convolution that halves the number of channels"
      x = ConvTranspose2d(
        x.shape[-1] // 2,
        2,
        strides=2,
        kernel_init=he_normal,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name='up',
      )(x)
    elif self.up == 'bilinear':
      x = resize_bilinear(x, (2 * x.shape[1], 2 * x.shape[2]), align_corners=True)
    else:
      raise ValueError(f"U-Net up-sampling '{self.up}' is not 'transpose' or 'bilinear'")
    if self.valid:
      skip = center_crop(skip, x.shape[1], x.shape[2])
    else:
      dh, dw = skip.shape[1] - x.shape[1], skip.shape[2] - x.shape[2]
      x = jnp.pad(x, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)))
    x = jnp.concatenate([skip, x.astype(skip.dtype)], axis=-1)
    return DoubleConv(
      self.features,
      self.mid_features,
      padding=0 if self.valid else 1,
      batch_norm=self.batch_norm,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='conv',
    )(x, train=train)


class UNet(nn.Module):
  """U-Net (Fig. 1): `depth` poolings, widths base_width * 2**level; logits per pixel."""

  num_classes: int = 2
  base_width: int = 64
  depth: int = 4
  padding: str = 'same'  # 'valid': the paper's unpadded convolutions and crops
  batch_norm: bool = True
  up: str = 'transpose'  # or 'bilinear' (same padding only)
  dropout_rate: float = 0.0  # at the end of the contracting path
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.padding not in ('same', 'valid'):
      raise ValueError(f"U-Net padding '{self.padding}' is not 'same' or 'valid'")
    valid = self.padding == 'valid'
    if valid and self.up != 'transpose':
      raise ValueError(
        f"the paper's valid U-Net up-samples by transposed convolutions, not '{self.up}' "
        "(bilinear up-sampling is for the same-padding U-Net, 'unet_same')"
      )
    halve = self.up == 'bilinear'  # milesial's bilinear=True halves the bottom widths
    widths = [self.base_width * 2**level for level in range(self.depth + 1)]
    common = dict(batch_norm=self.batch_norm, dtype=self.dtype, param_dtype=self.param_dtype)
    conv = functools.partial(DoubleConv, padding=0 if valid else 1, **common)

    x = conv(widths[0], name='inc')(x.astype(self.dtype), train=train)
    skips = []
    for level in range(1, self.depth + 1):
      if valid and (x.shape[1] % 2 or x.shape[2] % 2):
        raise ValueError(
          f'the valid U-Net needs even sizes before every pool, got '
          f'{x.shape[1]}x{x.shape[2]} before pool {level}: the input size must be '
          'one that halves evenly, e.g. 572 (388 out)'
        )
      skips.append(x)
      x = max_pool(x, 2, 2)
      last = level == self.depth
      x = conv(widths[level] // (2 if halve and last else 1), name=f'down{level}')(x, train=train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)

    for k, level in enumerate(reversed(range(self.depth)), 1):
      features, mid = widths[level], None
      if halve:
        features, mid = max(widths[level] // 2, widths[0]), widths[level]
      x = Up(features, mid, up=self.up, valid=valid, name=f'up{k}', **common)(
        x, skips[level], train=train
      )
    x = Conv(
      self.num_classes,
      (1, 1),
      kernel_init=he_normal,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='outc',
    )(x)
    return x.astype(jnp.float32)


MODELS = {
  'unet': functools.partial(UNet, padding='valid', batch_norm=False, dropout_rate=0.5),
  'unet_same': UNet,
}
