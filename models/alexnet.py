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
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models.conv import Conv
from models.layers import local_response_norm
from models.pooling import max_pool


def _pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  """The (out, in) averaging matrix of `torch.nn.AdaptiveAvgPool1d`."""
  m = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -(-((i + 1) * in_size) // out_size)  # ceil division
    m[i, start:end] = 1.0 / (end - start)
  return m


def adaptive_avg_pool(x, output_size: int | Sequence[int]):
  """Average pooling to a fixed spatial size, as `torch.nn.AdaptiveAvgPool2d`.

  Output cell i along an axis of input size n and output size m averages the inputs
  floor(i * n / m) .. ceil((i + 1) * n / m) - 1; windows may overlap, and a smaller
  input is replicated (1x1 -> 7x7 copies the single value).

  Args:
    x: NHWC array.
    output_size: (height, width) of the result, or one int for both.

  Returns:
    An array of shape (N, height, width, C) and the dtype of `x`.
  """
  oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
  n, h, w, c = x.shape
  if (h, w) == (oh, ow):
    return x
  if h % oh == 0 and w % ow == 0:  # equal, non-overlapping windows
    return x.reshape(n, oh, h // oh, ow, w // ow, c).mean(axis=(2, 4))
  # Weights like 1/3 are inexact in bfloat16, so average in float32.
  ph, pw = jnp.asarray(_pool_matrix(h, oh)), jnp.asarray(_pool_matrix(w, ow))
  y = jnp.einsum('ih,nhwc,jw->nijc', ph, x.astype(jnp.float32), pw)
  return y.astype(x.dtype)


def torch_default_kernel_init():
  """PyTorch's default conv/linear weight init: uniform in +-1/sqrt(fan_in)."""
  return nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def torch_default_bias_init(fan_in: int):
  """PyTorch's default bias init: uniform in +-1/sqrt(fan_in)."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


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
        kernel_init=torch_default_kernel_init(),
        bias_init=torch_default_bias_init(fan_in),
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=name,
      )(x)

    def dense(x, features, name):
      return nn.Dense(
        features,
        kernel_init=torch_default_kernel_init(),
        bias_init=torch_default_bias_init(x.shape[-1]),
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
