"""DeconvNet (Noh, Hong and Han 2015, "Learning deconvolution network for semantic
segmentation", arXiv 1505.04366, Fig. 2 and Table 1), as the authors' Caffe model
(HyeonwooNoh/DeconvNet, stage_2_train.prototxt and DeconvNet_inference_deploy.prototxt).

Encoder: VGG-16's thirteen 3x3 convolutions (configuration D), each with bias, BatchNorm
and ReLU, in five blocks of 64-128-256-512-512 maps; each block ends in 2x2/2 max
pooling that records its switches (pool{b}_mask). fc6 and fc7 are convolutions: 7x7
valid (7x7 -> 1x1 at 224 input) to 4096 maps and 1x1 to 4096, each with BN and ReLU.
Decoder, the mirror image: fc6-deconv, a 7x7 transposed convolution back to 7x7x512;
then per block unpooling with that block's switches (section 3.2.1) and 3x3 transposed
convolutions with padding 1 ("deconvolution", section 3.2.2) of 512-512-512,
512-512-256, 256-256-128, 128-64 and 64-64 maps, each with BN and ReLU; a 1x1
convolution to the classes gives logits at the input's size. 251,805,653 parameters at
21 classes (conv 14.72M, fc6/fc7 119.56M, decoder 117.52M).

Sizes: the encoder halves five times with floor pooling (Caffe rounds up; the two
agree when the input is divisible by 32) and unpooling restores each pre-pool size.
`base_width` (64), `fc_features` (4096) and `fc_kernel` (7 = the pool5 size at 224)
shrink it for CPU runs, e.g. 8, 64 and 2 at 64x64 input.

Initialisation: the prototxt's decoder fillers, N(0, 0.01) weights and zero biases;
the encoder and fc6/fc7 start from ImageNet VGG-16 there, here (from scratch) from
He-normal fan-out convolutions (as our VGG) and N(0, 0.01) fc6/fc7. Every BN starts at
scale 1 and offset 0.001 (the prototxt's scale/shift fillers).

Module names are the prototxt's, '-' written '_': conv{b}_{i}/bn{b}_{i}, fc6/bnfc6,
fc7/bnfc7, fc6_deconv/fc6_deconv_bn, deconv{b}_{i}/debn{b}_{i}, seg_score (Caffe
seg-score-voc). Caffe deconvolution weights are (in, out, kh, kw), like PyTorch's
ConvTranspose2d; they load as kernel (kh, kw, in, out) with `ConvTranspose2d`.
"""

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from models.batch_norm import torch_batch_norm
from models.conv import Conv
from models.initializers import he_normal_fan_out
from models.pooling import max_pool_with_switches, max_unpool
from models.resampling import ConvTranspose2d

# VGG-16 (configuration D): convolutions per block, as multiples of base_width.
ENCODER = ((1, 1), (2, 2), (4, 4, 4), (8, 8, 8), (8, 8, 8))
# The mirrored decoder, block 5 first: deconvolutions per block (prototxt).
DECODER = ((8, 8, 8), (8, 8, 4), (4, 4, 2), (2, 1), (1, 1))


class DeconvNet(nn.Module):
  """DeconvNet (Fig. 2): VGG-16 with switches, fc6/fc7 convs, mirrored deconv net."""

  num_classes: int = 21
  base_width: int = 64
  fc_features: int = 4096
  fc_kernel: int = 7
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    gauss = nn.initializers.normal(stddev=0.01)
    common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    bn = torch_batch_norm(train, bias_init=nn.initializers.constant(0.001), **common)

    def conv_bn_relu(x, layer, features, kernel, padding, init, name, bn_name):
      x = layer(features, kernel, padding=padding, kernel_init=init, name=name, **common)(x)
      return nn.relu(bn(name=bn_name)(x))

    conv = functools.partial(conv_bn_relu, layer=Conv)
    deconv = functools.partial(conv_bn_relu, layer=ConvTranspose2d)
    k = self.fc_kernel

    x = x.astype(self.dtype)
    switches = []
    for b, widths in enumerate(ENCODER, 1):
      for i, w in enumerate(widths, 1):
        x = conv(
          x,
          features=w * self.base_width,
          kernel=(3, 3),
          padding=1,
          init=he_normal_fan_out,
          name=f'conv{b}_{i}',
          bn_name=f'bn{b}_{i}',
        )
      pre_pool = x.shape[1:3]
      x, switch = max_pool_with_switches(x, 2)
      switches.append((switch, pre_pool))
    if x.shape[1] < k or x.shape[2] < k:
      raise ValueError(
        f'DeconvNet fc6 ({k}x{k}) needs pool5 maps of at least {k}x{k}, '
        f'got {x.shape[1]}x{x.shape[2]}: inputs of {32 * k}x{32 * k} or more, '
        'or a smaller fc_kernel'
      )
    x = conv(
      x,
      features=self.fc_features,
      kernel=(k, k),
      padding=0,
      init=gauss,
      name='fc6',
      bn_name='bnfc6',
    )
    x = conv(
      x,
      features=self.fc_features,
      kernel=(1, 1),
      padding=0,
      init=gauss,
      name='fc7',
      bn_name='bnfc7',
    )
    x = deconv(
      x,
      features=8 * self.base_width,
      kernel=k,
      padding=0,
      init=gauss,
      name='fc6_deconv',
      bn_name='fc6_deconv_bn',
    )

    for b, widths in zip(range(5, 0, -1), DECODER):
      switch, size = switches[b - 1]
      x = max_unpool(x, switch, 2, output_size=size)  # unpool{b}
      for i, w in enumerate(widths, 1):
        x = deconv(
          x,
          features=w * self.base_width,
          kernel=3,
          padding=1,
          init=gauss,
          name=f'deconv{b}_{i}',
          bn_name=f'debn{b}_{i}',
        )
    x = Conv(self.num_classes, (1, 1), kernel_init=gauss, name='seg_score', **common)(x)
    return x.astype(jnp.float32)


MODELS = {
  'deconvnet': DeconvNet,
}
