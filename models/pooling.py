"""Pooling with PyTorch's sizes: max pooling (plain, with switches), max unpooling and
adaptive average pooling.

`max_pool` is the layer every family pools with: PyTorch's `MaxPool2d(window, stride,
padding, ceil_mode)` (padding is -inf; in ceil mode the output size is
ceil((i + 2p - k) / s) + 1, the last window dropped when it would start in the padding,
PyTorch's rule: 112 -> 56 where floor mode gives 55 for k=3, s=2). Under XLA's own
backward (models/backward.py) it is `nn.max_pool`, whose gradient is a
select-and-scatter; under the 'cpu' backward it is `max_pool_2d`: the same values and
the gradient at the first maximum of each window in row-major order (PyTorch's), from a
stack of the window's taps, ~40x faster to train on XLA:CPU (README, Models).
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import backward


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


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
  oh, ow = _pair(output_size)
  n, h, w, c = x.shape
  if (h, w) == (oh, ow):
    return x
  if h % oh == 0 and w % ow == 0:  # equal, non-overlapping windows
    return x.reshape(n, oh, h // oh, ow, w // ow, c).mean(axis=(2, 4))
  # Weights like 1/3 are inexact in bfloat16, so average in float32.
  ph, pw = jnp.asarray(_pool_matrix(h, oh)), jnp.asarray(_pool_matrix(w, ow))
  y = jnp.einsum('ih,nhwc,jw->nijc', ph, x.astype(jnp.float32), pw)
  return y.astype(x.dtype)


def _ceil_extra(size: int, window: int, stride: int, pad: int) -> int:
  """Extra right/bottom padding that turns floor-mode pooling into ceil mode."""
  floor_out = (size + 2 * pad - window) // stride + 1
  ceil_out = math.ceil((size + 2 * pad - window) / stride) + 1
  # PyTorch drops a last window that would start inside the right padding only.
  if (ceil_out - 1) * stride >= size + pad:
    ceil_out -= 1
  return (ceil_out - floor_out) * stride


def max_pool(
  x,
  window: int | Sequence[int],
  stride: int | Sequence[int],
  padding: int = 0,
  ceil_mode: bool = False,
):
  """2-D max pooling with PyTorch's `MaxPool2d(window, stride, padding, ceil_mode)`.

  See the module docstring: `nn.max_pool` or, under the 'cpu' backward, `max_pool_2d`.
  """
  if backward.current() == 'cpu':
    return max_pool_2d(x, window, stride, padding, ceil_mode)
  (wh, ww), (sh, sw) = _pair(window), _pair(stride)
  eh = _ceil_extra(x.shape[1], wh, sh, padding) if ceil_mode else 0
  ew = _ceil_extra(x.shape[2], ww, sw, padding) if ceil_mode else 0
  pads = ((padding, padding + eh), (padding, padding + ew))
  return nn.max_pool(x, (wh, ww), strides=(sh, sw), padding=pads)


@jax.custom_vjp
def _select_max(taps):
  """Max over axis 3 of (N, oh, ow, taps, C); the gradient goes to the first maximum.

  A custom gradient because autodiff of a max is slow on XLA:CPU either way: through
  `reduce_window` it is a select-and-scatter (~100x the forward pass), through a
  reduction it splits ties and is ~50x; this mask costs about as much as the forward.
  """
  return taps.max(axis=3)


def _first_max(taps, pooled):
  """Index along axis 3 of the first tap equal to the maximum (PyTorch's tie rule)."""
  k = taps.shape[3]
  return jnp.where(taps == pooled[:, :, :, None], jnp.arange(k)[:, None], k).min(axis=3)


def _select_max_fwd(taps):
  pooled = taps.max(axis=3)
  return pooled, (taps, pooled)


def _select_max_bwd(residuals, g):
  taps, pooled = residuals
  hot = jnp.arange(taps.shape[3])[:, None] == _first_max(taps, pooled)[:, :, :, None]
  return (jnp.where(hot, g[:, :, :, None], jnp.zeros((), g.dtype)),)


_select_max.defvjp(_select_max_fwd, _select_max_bwd)


def _pool_taps(x, window, stride, padding, ceil_mode):
  """(N, oh, ow, kh * kw, C): every window's inputs, -inf where it covers padding."""
  (kh, kw), (sh, sw) = window, stride
  _, h, w, _ = x.shape
  eh = _ceil_extra(h, kh, sh, padding) if ceil_mode else 0
  ew = _ceil_extra(w, kw, sw, padding) if ceil_mode else 0
  xp = jnp.pad(
    x, ((0, 0), (padding, padding + eh), (padding, padding + ew), (0, 0)), constant_values=-jnp.inf
  )
  oh = (h + 2 * padding + eh - kh) // sh + 1
  ow = (w + 2 * padding + ew - kw) // sw + 1
  return jnp.stack(
    [
      xp[:, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
      for i in range(kh)
      for j in range(kw)
    ],
    axis=3,
  )


def max_pool_2d(
  x,
  window: int | Sequence[int] = 2,
  stride: int | Sequence[int] | None = None,
  padding: int = 0,
  ceil_mode: bool = False,
):
  """PyTorch's `MaxPool2d(window, stride, padding, ceil_mode)`, with a fast gradient.

  Same values and sizes as `models.layers.max_pool` (padding is -inf; ceil mode
  rounds the output size up unless the last window would start in the padding); the
  gradient reaches the first maximum of each window in row-major order, as in PyTorch.
  2x2/2 over 16x64x64x64 on 2 loaded CPU cores: training step 2.3 ms, `nn.max_pool`'s
  95 ms (README, Models). No forward-mode autodiff (a custom VJP).
  """
  window = _pair(window)
  stride = window if stride is None else _pair(stride)
  return _select_max(_pool_taps(x, window, stride, padding, ceil_mode))


def max_pool_with_switches(
  x,
  window: int | Sequence[int] = 2,
  stride: int | Sequence[int] | None = None,
  padding: int = 0,
  ceil_mode: bool = False,
):
  """`max_pool_2d` that also returns the switches, as `MaxPool2d(return_indices=True)`.

  The switch of an output cell is where its maximum came from: the flat position
  h * W + w in the input's (H, W) channel plane, PyTorch's index. Ties go to the first
  maximum in row-major window order; padding never wins.

  Args:
    x: (N, H, W, C).
    window: window size per axis.
    stride: stride per axis (default: the window).
    padding: implicit -inf padding on every side.
    ceil_mode: round the output size up, as PyTorch's `ceil_mode=True`.

  Returns:
    (pooled, switches): both (N, oh, ow, C); switches are int32.
  """
  (kh, kw) = _pair(window)
  (sh, sw) = (kh, kw) if stride is None else _pair(stride)
  taps = _pool_taps(x, (kh, kw), (sh, sw), padding, ceil_mode)
  pooled = _select_max(taps)
  first = jax.lax.stop_gradient(_first_max(taps, pooled))
  _, oh, ow, _ = pooled.shape
  rows = (jnp.arange(oh) * sh - padding)[:, None, None] + first // kw
  cols = (jnp.arange(ow) * sw - padding)[None, :, None] + first % kw
  return pooled, (rows * x.shape[2] + cols).astype(jnp.int32)


def max_unpool(
  x,
  switches,
  window: int | Sequence[int] = 2,
  stride: int | Sequence[int] | None = None,
  padding: int = 0,
  output_size: Sequence[int] | None = None,
):
  """Max unpooling, as PyTorch's `MaxUnpool2d`: values back at their switches.

  Output plane position `switches[n, i, j, c]` (flat h * W + w) of channel c gets
  x[n, i, j, c]; every other position is 0. The gradient of an output position flows
  to the input that was put there, and nowhere else. DeconvNet (Noh et al. 2015,
  section 3.2.1) unpools with the switches of the mirrored pooling layer.

  When the windows do not overlap (window == stride, no padding) this is a dense
  select and reshape, which assumes every switch lies in its own window, as switches
  from `max_pool_with_switches` with the same window do; otherwise a scatter.

  Args:
    x: (N, h, w, C) pooled values (or what the decoder made of them).
    switches: (N, h, w, C) int flat positions from `max_pool_with_switches`.
    window, stride, padding: those of the pooling; they set the default output size
      (h - 1) * stride - 2 * padding + window.
    output_size: (H, W) of the unpooled map, e.g. the pooled map's input size when
      floor-mode pooling dropped a row.

  Returns:
    (N, H, W, C).
  """
  (kh, kw) = _pair(window)
  (sh, sw) = (kh, kw) if stride is None else _pair(stride)
  n, h, w, c = x.shape
  if output_size is None:
    output_size = ((h - 1) * sh - 2 * padding + kh, (w - 1) * sw - 2 * padding + kw)
  big_h, big_w = output_size
  if (kh, kw) == (sh, sw) and padding == 0 and h * sh <= big_h and w * sw <= big_w:
    # Each switch's position inside its own window, one-hot over the window's taps.
    dr = switches // big_w - (jnp.arange(h) * sh)[:, None, None]
    dc = switches % big_w - (jnp.arange(w) * sw)[None, :, None]
    hot = (dr * kw + dc)[..., None] == jnp.arange(kh * kw)
    y = jnp.where(hot, x[..., None], jnp.zeros((), x.dtype))
    y = y.reshape(n, h, w, c, kh, kw).transpose(0, 1, 4, 2, 5, 3)
    y = y.reshape(n, h * kh, w * kw, c)
    return jnp.pad(y, ((0, 0), (0, big_h - h * kh), (0, big_w - w * kw), (0, 0)))
  flat = jnp.zeros((n, c, big_h * big_w), x.dtype)
  idx = switches.transpose(0, 3, 1, 2).reshape(n, c, h * w)
  flat = flat.at[jnp.arange(n)[:, None, None], jnp.arange(c)[None, :, None], idx].set(
    x.transpose(0, 3, 1, 2).reshape(n, c, h * w)
  )
  return flat.reshape(n, c, big_h, big_w).transpose(0, 2, 3, 1)
