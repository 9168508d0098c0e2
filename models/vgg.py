"""VGG (Simonyan and Zisserman 2014, "Very deep convolutional networks for large-scale
image recognition", arXiv 1409.1556, Table 1 and section 2).

Five blocks of convolutions of 64, 128, 256, 512 and 512 maps, each block ending in
2x2/2 max pooling; 3x3 convolutions with padding 1 (1x1 in configuration C's last
layer of blocks 3-5), with bias, each followed by ReLU; then, as torchvision does,
adaptive average pooling to 7x7 (identity at 224x224) and fully connected
25088-4096-4096-num_classes with ReLU and dropout 0.5 after fc6 and fc7 (section 3.1).
Configuration A-LRN adds local response normalization after its first convolution.
The `batch_norm` variants (not in the paper; torchvision's `vgg*_bn`) put BatchNorm
between each convolution and its ReLU and keep the conv biases.

Initialization is torchvision's: He-normal fan-out for convolutions, N(0, 0.01) for
the fully connected layers, zero biases. The paper instead trained A from N(0, 0.01)
and initialized the deeper nets' first four convs and last three FC layers from it,
noting afterwards that Glorot initialization works without pre-training (section 3.1).

Parameters at 1000 classes: A 132,863,336 (A-LRN the same), B 133,047,848,
C 133,638,952, D 138,357,544, E 143,667,240; with BatchNorm A 132,868,840,
B 133,053,736, D 138,365,992, E 143,678,248.
"""

import functools
import types
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from models.batch_norm import torch_batch_norm
from models.conv import Conv
from models.initializers import he_normal_fan_out
from models.layers import local_response_norm
from models.pooling import adaptive_avg_pool, max_pool

# Table 1: maps per block, and per configuration the layers of each block: a conv's
# kernel size, or 'lrn' for local response normalization.
BLOCK_FEATURES = (64, 128, 256, 512, 512)
CONFIGS = types.MappingProxyType(
  {
    'A': ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    'A-LRN': ((3, 'lrn'), (3,), (3, 3), (3, 3), (3, 3)),
    'B': ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    'C': ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    'D': ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    'E': ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
  }
)


class VGG(nn.Module):
  """A VGG configuration of Table 1, optionally with BatchNorm after each conv."""

  config: str = 'D'
  batch_norm: bool = False
  num_classes: int = 1000
  dropout_rate: float = 0.5
  fc_features: int = 4096
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.config not in CONFIGS:
      raise ValueError(f"unknown VGG config '{self.config}'; valid: {', '.join(CONFIGS)}")
    dense = functools.partial(
      nn.Dense,
      kernel_init=nn.initializers.normal(stddev=0.01),
      bias_init=nn.initializers.zeros,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
    )
    norm = torch_batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.astype(self.dtype)
    for b, (features, layers) in enumerate(zip(BLOCK_FEATURES, CONFIGS[self.config]), 1):
      i = 0
      for layer in layers:
        if layer == 'lrn':
          # "LRN layer (Krizhevsky et al., 2012)": AlexNet's parameters (section 2.3).
          x = local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0)
          continue
        i += 1
        x = Conv(
          features,
          (layer, layer),
          padding=layer // 2,
          kernel_init=he_normal_fan_out,
          bias_init=nn.initializers.zeros,
          dtype=self.dtype,
          param_dtype=self.param_dtype,
          name=f'conv{b}_{i}',
        )(x)
        if self.batch_norm:
          x = norm(name=f'bn{b}_{i}')(x)
        x = nn.relu(x)
      x = max_pool(x, 2, 2)
    x = adaptive_avg_pool(x, 7)
    x = x.reshape((x.shape[0], -1))
    dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
    x = dropout(nn.relu(dense(self.fc_features, name='fc6')(x)))
    x = dropout(nn.relu(dense(self.fc_features, name='fc7')(x)))
    return dense(self.num_classes, name='fc8')(x).astype(jnp.float32)


MODELS = {
  'vgg11': functools.partial(VGG, config='A'),
  'vgg11_lrn': functools.partial(VGG, config='A-LRN'),
  'vgg13': functools.partial(VGG, config='B'),
  'vgg16_c': functools.partial(VGG, config='C'),
  'vgg16': functools.partial(VGG, config='D'),
  'vgg19': functools.partial(VGG, config='E'),
  'vgg11_bn': functools.partial(VGG, config='A', batch_norm=True),
  'vgg13_bn': functools.partial(VGG, config='B', batch_norm=True),
  'vgg16_bn': functools.partial(VGG, config='D', batch_norm=True),
  'vgg19_bn': functools.partial(VGG, config='E', batch_norm=True),
}
