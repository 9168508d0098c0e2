"""Blocks shared by several families: ceil-mode pooling, local response normalization."""

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def _ceil_extra(size: int, window: int, stride: int, pad: int) -> int:
  """Extra right/bottom padding that turns floor-mode pooling into ceil mode."""
  floor_out = (size + 2 * pad - window) // stride + 1
  ceil_out = math.ceil((size + 2 * pad - window) / stride) + 1
  # PyTorch drops a last window that would start inside the right padding only.
  if (ceil_out - 1) * stride >= size + pad:
    ceil_out -= 1
  return (ceil_out - floor_out) * stride


def max_pool(x, window: int | Sequence[int], stride: int | Sequence[int],
             padding: int = 0, ceil_mode: bool = False):
  """2-D max pooling with PyTorch's `MaxPool2d(window, stride, padding, ceil_mode)` sizes.

  Padding is -inf, so padded positions never win. In ceil mode the output size is
  ceil((i + 2p - k) / s) + 1, with the last window dropped when it would start in the
  padding (PyTorch's rule); e.g. 112 -> 56 where floor mode gives 55 for k=3, s=2.
  """
  wh, ww = (window, window) if isinstance(window, int) else window
  sh, sw = (stride, stride) if isinstance(stride, int) else stride
  eh = _ceil_extra(x.shape[1], wh, sh, padding) if ceil_mode else 0
  ew = _ceil_extra(x.shape[2], ww, sw, padding) if ceil_mode else 0
  pads = ((padding, padding + eh), (padding, padding + ew))
  return nn.max_pool(x, (wh, ww), strides=(sh, sw), padding=pads)


def local_response_norm(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 2.0):
  """Local response normalization across channels, as `torch.nn.LocalResponseNorm`.

  b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta, the window
  centred on c with size // 2 channels before and (size - 1) // 2 after (zero padded).
  AlexNet (section 3.3) uses size=5, alpha=1e-4, beta=0.75, k=2; note that the paper
  writes alpha without the 1/size that PyTorch (and Caffe) divide by.
  """
  sq = jnp.square(x.astype(jnp.float32))
  c = x.shape[-1]
  padded = jnp.pad(sq, [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
  window_sum = sum(padded[..., i:i + c] for i in range(size))
  return (x / (k + alpha / size * window_sum) ** beta).astype(x.dtype)
