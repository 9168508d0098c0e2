"""AlexNet (Krizhevsky, Sutskever and Hinton 2012, "ImageNet classification with deep
convolutional neural networks", section 3 and Fig. 2), in two forms.

`AlexNet` is torchvision's single-tower variant (after Krizhevsky 2014, "One weird
trick"): convolutions of 64-192-384-256-256 maps, no response normalization, no groups;
3x3/2 max pooling after conv1, conv2 and conv5; adaptive average pooling to 6x6; then
dropout 0.5 before fc6 and fc7, fully connected 9216-4096-4096-num_classes. 61,100,840
parameters at 1000 classes. PyTorch's default initialization, which torchvision keeps:
weights and biases uniform in +-1/sqrt(fan_in).

`AlexNetOriginal` is the paper's two-GPU network on 227x227 inputs (the paper says 224;
227 is what makes its 11x11/4 conv1 give 55x55): 96-256-384-384-256 maps, where conv2,
conv4 and conv5 see only the maps on their own GPU (two groups) and conv3 and the
fully connected layers see both; ReLU after every layer; local response normalization
(k=2, n=5, alpha=1e-4, beta=0.75) after conv1 and conv2, each followed by overlapping
3x3/2 max pooling, as is conv5 (section 3.4); dropout 0.5 on the outputs of fc6 and fc7
(section 4.2). 60,965,224 parameters. Initialization of section 5: weights N(0, 0.01);
biases 1 in conv2, conv4, conv5 and the hidden fully connected layers (fc6, fc7), so
that the ReLUs start with positive inputs; 0 in the others.

Both flatten the 6x6x256 map in NHWC order; torchvision flattens NCHW, so a weight
converter must permute fc6's input dimension.
"""

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from models.conv import Conv
from models.initializers import torch_bias_init, torch_kernel_init
from models.layers import local_response_norm
from models.pooling import adaptive_avg_pool, max_pool


class AlexNet(nn.Module):
  """torchvision's AlexNet: 64-192-384-256-256, no LRN, adaptive pool to 6x6."""

  num_classes: int = 1000
  dropout_rate: float = 0.5
  fc_features: int = 4096
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    def conv(x, features, kernel, stride, padding, name):
      fan_in = x.shape[-1] * kernel * kernel
      return Conv(
        features,
        (kernel, kernel),
        (stride, stride),
        padding=padding,
        kernel_init=torch_kernel_init,
        bias_init=torch_bias_init(fan_in),
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=name,
      )(x)

    def dense(x, features, name):
      return nn.Dense(
        features,
        kernel_init=torch_kernel_init,
        bias_init=torch_bias_init(x.shape[-1]),
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=name,
      )(x)

    dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
    x = x.astype(self.dtype)
    x = max_pool(nn.relu(conv(x, 64, 11, 4, 2, 'conv1')), 3, 2)
    x = max_pool(nn.relu(conv(x, 192, 5, 1, 2, 'conv2')), 3, 2)
    x = nn.relu(conv(x, 384, 3, 1, 1, 'conv3'))
    x = nn.relu(conv(x, 256, 3, 1, 1, 'conv4'))
    x = max_pool(nn.relu(conv(x, 256, 3, 1, 1, 'conv5')), 3, 2)
    x = adaptive_avg_pool(x, 6)
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(dense(dropout(x), self.fc_features, 'fc6'))
    x = nn.relu(dense(dropout(x), self.fc_features, 'fc7'))
    return dense(x, self.num_classes, 'fc8').astype(jnp.float32)


class AlexNetOriginal(nn.Module):
  """The paper's two-tower AlexNet: 96-256-384-384-256, grouped convs, LRN, 227 input."""

  num_classes: int = 1000
  dropout_rate: float = 0.5
  fc_features: int = 4096
  groups: int = 2  # the two GPUs of section 3.2; 1 gives the 62,378,344-param dense net
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    weight_init = nn.initializers.normal(stddev=0.01)  # section 5

    def conv(x, features, kernel, stride, padding, groups, bias, name):
      return Conv(
        features,
        (kernel, kernel),
        (stride, stride),
        padding=padding,
        feature_group_count=groups,
        kernel_init=weight_init,
        bias_init=nn.initializers.constant(bias),
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=name,
      )(x)

    def dense(x, features, bias, name):
      return nn.Dense(
        features,
        kernel_init=weight_init,
        bias_init=nn.initializers.constant(bias),
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=name,
      )(x)

    # The paper's alpha=1e-4 is cuda-convnet's `scale`, which that code divides by the
    # window size: exactly what local_response_norm (like torch and Caffe) does.
    lrn = functools.partial(local_response_norm, size=5, alpha=1e-4, beta=0.75, k=2.0)
    dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
    g = self.groups
    x = x.astype(self.dtype)
    x = max_pool(lrn(nn.relu(conv(x, 96, 11, 4, 0, 1, 0.0, 'conv1'))), 3, 2)
    x = max_pool(lrn(nn.relu(conv(x, 256, 5, 1, 2, g, 1.0, 'conv2'))), 3, 2)
    x = nn.relu(conv(x, 384, 3, 1, 1, 1, 0.0, 'conv3'))
    x = nn.relu(conv(x, 384, 3, 1, 1, g, 1.0, 'conv4'))
    x = max_pool(nn.relu(conv(x, 256, 3, 1, 1, g, 1.0, 'conv5')), 3, 2)
    # Identity at the paper's 227x227; keeps fc6 at 9216 inputs for other sizes.
    x = adaptive_avg_pool(x, 6)
    x = x.reshape((x.shape[0], -1))
    x = dropout(nn.relu(dense(x, self.fc_features, 1.0, 'fc6')))
    x = dropout(nn.relu(dense(x, self.fc_features, 1.0, 'fc7')))
    return dense(x, self.num_classes, 0.0, 'fc8').astype(jnp.float32)


MODELS = {
  'alexnet': AlexNet,
  'alexnet_original': AlexNetOriginal,
}
