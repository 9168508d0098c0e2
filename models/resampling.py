"""Layers that change resolution, with PyTorch's semantics: transposed convolution and
bilinear resizing (max pooling, switches and unpooling: models/pooling.py); and the size arithmetic
of Dumoulin and Visin (2016, "A guide to convolution arithmetic for deep learning",
arXiv 1603.07285, relations 1-15).

Layout is NHWC throughout. Dilated (atrous) convolution needs no layer of its own:
`nn.Conv(features, (k, k), kernel_dilation=d, padding=p)` is PyTorch's
`Conv2d(k, padding=p, dilation=d)`, a k x k kernel with d - 1 holes between taps (an
effective kernel of k + (k - 1)(d - 1)), output size `conv_output_size` (relation 15);
with p = d and k = 3 the size is kept, as in U^2-Net's RSU blocks. On XLA:CPU its
training step costs about what an undilated conv's does (README, Models).
"""

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


# --- size arithmetic ---------------------------------------------------------------


def conv_output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
  """Output size of a convolution or pooling (relation 15; relations 1-7 with d = 1).

  o = floor((i + 2p - k - (k - 1)(d - 1)) / s) + 1.
  """
  return (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1


def conv_transpose_output_size(
  i: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0, d: int = 1
) -> int:
  """Output size of PyTorch's `ConvTranspose2d` (relations 8-14 with d = 1).

  o' = (i' - 1)s - 2p + d(k - 1) + output_padding + 1. It inverts `conv_output_size`
  of the same k, s, p, d: the transposed convolution of a conv that mapped i to i'
  maps i' back to i when output_padding = a = (i + 2p - k) mod s (relation 14), the
  rows that the forward conv's floor dropped.
  """
  return (i - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


# --- transposed convolution --------------------------------------------------------


def _subpixel_kernel(kernel, strides, dilation):
  """(kh, kw, in, out) scatter kernel -> (qh, qw, in, sh * sw * out) conv kernel.

  Output row m = n s + r of a transposed conv gathers kernel taps r, r + s, r + 2s ...
  from input rows n, n - 1, n - 2 ...: for each phase r, a stride-1 convolution with a
  q = ceil(k / s) tap sub-kernel (flipped; k of the dilated kernel). All s x s phases
  are one convolution with s * s * out output channels, followed by depth-to-space.
  """
  (sh, sw), (dh, dw) = strides, dilation
  kernel = jax.lax.pad(
    kernel, jnp.zeros((), kernel.dtype), ((0, 0, dh - 1), (0, 0, dw - 1), (0, 0, 0), (0, 0, 0))
  )
  kh, kw, cin, cout = kernel.shape  # the dilated kernel: zeros between the taps
  qh, qw = -(-kh // sh), -(-kw // sw)
  kernel = jnp.pad(kernel, ((0, qh * sh - kh), (0, qw * sw - kw), (0, 0), (0, 0)))
  kernel = kernel.reshape(qh, sh, qw, sw, cin, cout)[::-1, :, ::-1]
  return kernel.transpose(0, 2, 4, 1, 3, 5).reshape(qh, qw, cin, sh * sw * cout)


def _subpixel_geometry(i, k, s, p, a, d):
  """One axis: the input's padding (lo, hi), the crop offset and the output size."""
  o = conv_transpose_output_size(i, k, s, p, a, d)
  q = -(-(d * (k - 1) + 1) // s)
  first, last = p // s, -(-(p + o) // s)  # the coarse rows that hold the output
  lo = q - 1 - first
  hi = (last - first) - i - lo + q - 1
  return (lo, hi), p - first * s, o


def conv_transpose(
  x,
  kernel,
  strides: int | Sequence[int] = 1,
  padding: int | Sequence[int] = 0,
  output_padding: int | Sequence[int] = 0,
  dilation: int | Sequence[int] = 1,
):
  """Transposed convolution with PyTorch's `ConvTranspose2d` semantics, fast on CPU.

  Every input pixel x[n] is scattered through the kernel: y[n s + j d - p] +=
  x[n] @ kernel[j], for output rows 0 <= m < o = (i - 1)s - 2p + d(k - 1) + a + 1
  (`conv_transpose_output_size`). `padding` p crops p rows off both sides of the full
  scatter; `output_padding` a (< s or < d) adds a rows at the bottom/right, resolving
  which of the s input sizes a strided conv maps to i' the result should have
  (relation 14). This is the gradient of a conv with the same k, s, p, d.

  Equal to `jax.lax.conv_transpose` on the flipped kernel with explicit padding
  (d(k-1) - p, d(k-1) - p + a) per axis (`conv_transpose_lax`), whose backward pass is
  slow on XLA:CPU for s > 1 (jax issue #23783). So for s > 1 this computes one
  stride-1 convolution with s*s*out channels and a ceil(d(k-1)+1 / s)-tap kernel per
  phase, then depth-to-space (the "sub-pixel" form); a per-pixel matmul when kernel <=
  stride. U-Net's 2x2/2 up-conv, 64 -> 32 maps, batch 16 at 32x32: training step 25 ms
  instead of 273 ms on 2 loaded CPU cores (README, Models). For s = 1 it is the plain
  convolution with the flipped kernel, as in lax.

  Args:
    x: (N, H, W, in) input.
    kernel: (kh, kw, in, out); PyTorch's weight (in, out, kh, kw) transposed by
      (2, 3, 0, 1), not flipped.
    strides: s per spatial axis.
    padding: p per spatial axis (PyTorch's `padding`).
    output_padding: a per spatial axis (PyTorch's `output_padding`).
    dilation: d per spatial axis.

  Returns:
    (N, oh, ow, out).
  """
  s, p, a, d = (_pair(v) for v in (strides, padding, output_padding, dilation))
  k = kernel.shape[:2]
  geometry = [_subpixel_geometry(x.shape[1 + j], k[j], s[j], p[j], a[j], d[j]) for j in range(2)]
  (pad_h, off_h, oh), (pad_w, off_w, ow) = geometry
  sub = _subpixel_kernel(kernel, s, d)
  conv = functools.partial(
    jax.lax.conv_general_dilated,
    rhs=sub,
    window_strides=(1, 1),
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
  )
  if s == (1, 1):  # a plain convolution with the flipped kernel
    return conv(x, padding=(pad_h, pad_w))[:, off_h : off_h + oh, off_w : off_w + ow]
  # Padding (or cropping) as an op of its own: the backward pass of the sub-pixel conv
  # with the padding inside it was ~8x slower on XLA:CPU.
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pad_h, 0), (*pad_w, 0), (0, 0, 0)))
  if sub.shape[:2] == (1, 1):  # kernel <= stride: a matmul, whose gradient is fast too
    z = jnp.einsum('nhwi,io->nhwo', x, sub[0, 0])
  else:
    z = conv(x, padding='VALID')
  n, lh, lw, _ = z.shape
  cout = kernel.shape[-1]
  z = z.reshape(n, lh, lw, s[0], s[1], cout).transpose(0, 1, 3, 2, 4, 5)
  z = z.reshape(n, lh * s[0], lw * s[1], cout)  # depth-to-space
  return z[:, off_h : off_h + oh, off_w : off_w + ow]


def conv_transpose_lax(
  x,
  kernel,
  strides: int | Sequence[int] = 1,
  padding: int | Sequence[int] = 0,
  output_padding: int | Sequence[int] = 0,
  dilation: int | Sequence[int] = 1,
):
  """`conv_transpose` through `jax.lax.conv_transpose` (the reference; slow backward).

  lax dilates the input by s and correlates it with the kernel as given, padding the
  dilated input with explicit (lo, hi) pairs as they are: PyTorch's scatter is that
  correlation with the spatially flipped kernel and (lo, hi) = (d(k-1) - p,
  d(k-1) - p + a).
  """
  s, p, a, d = (_pair(v) for v in (strides, padding, output_padding, dilation))
  k = kernel.shape[:2]
  pads = [(d[j] * (k[j] - 1) - p[j], d[j] * (k[j] - 1) - p[j] + a[j]) for j in range(2)]
  return jax.lax.conv_transpose(
    x, kernel[::-1, ::-1], s, pads, rhs_dilation=d, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


class ConvTranspose2d(nn.Module):
  """PyTorch's `ConvTranspose2d` (see `conv_transpose`); kernel (kh, kw, in, out).

  `impl='lax'` computes it with `jax.lax.conv_transpose` instead (same numbers).
  """

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: int | Sequence[int] = 0
  output_padding: int | Sequence[int] = 0
  kernel_dilation: int | Sequence[int] = 1
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros
  impl: str = 'fast'  # or 'lax'
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kh, kw = _pair(self.kernel_size)
    kernel = self.param(
      'kernel', self.kernel_init, (kh, kw, x.shape[-1], self.features), self.param_dtype
    )
    fn = {'fast': conv_transpose, 'lax': conv_transpose_lax}[self.impl]
    y = fn(
      x.astype(self.dtype),
      kernel.astype(self.dtype),
      self.strides,
      self.padding,
      self.output_padding,
      self.kernel_dilation,
    )
    if self.use_bias:
      bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y

  @nn.nowrap
  def macs(self, input_shape, output_shape) -> int:
    """Each input value meets every kernel tap and output map: N*H*W*in * kh*kw*out.

    The multiplies that happen. architectures.md's U-Net (167.3 G) and DeconvNet (37.7
    G) counts take the equivalent conv over the zero-stretched input instead: output
    pixels * kh*kw*in*out, 4x ours for a 2x2/2 up-conv.
    """
    del output_shape
    return math.prod(input_shape) * math.prod(_pair(self.kernel_size)) * self.features


# --- bilinear resizing -------------------------------------------------------------


def _bilinear_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
  """The (out, in) interpolation matrix of PyTorch's bilinear rule along one axis."""
  dst = np.arange(out_size, dtype=np.float64)
  if align_corners:
    src = dst * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
  else:
    src = np.maximum((dst + 0.5) * (in_size / out_size) - 0.5, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  m = np.zeros((out_size, in_size))
  np.add.at(m, (dst.astype(np.int64), i0), 1.0 - (src - i0))
  np.add.at(m, (dst.astype(np.int64), i1), src - i0)
  return m


def _apply_rows(x, axis: int, m: np.ndarray):
  """x multiplied by the static matrix `m` (out, in) along `axis`.

  A weighted sum of a few gathers where every row of `m` has at most 4 nonzeros (a
  bilinear resize, or the transpose of a 2x one); otherwise, as for the gradient of a
  large upsampling, a dense product, which compiles faster than many gathers.
  """
  nonzeros = (m != 0).sum(axis=1)
  if nonzeros.max() > 4:
    y = jnp.tensordot(jnp.asarray(m, x.dtype), x, axes=([1], [axis]))
    return jnp.moveaxis(y, 0, axis)
  shape = [1] * x.ndim
  shape[axis] = m.shape[0]
  y = jnp.zeros(x.shape[:axis] + (m.shape[0],) + x.shape[axis + 1 :], x.dtype)
  for t in range(nonzeros.max()):
    cols = np.array([np.flatnonzero(row)[min(t, n - 1)] if n else 0 for row, n in zip(m, nonzeros)])
    weights = np.where(t < nonzeros, m[np.arange(m.shape[0]), cols], 0.0)
    y = y + (
      jnp.take(x, cols, axis=axis, mode='clip') * jnp.asarray(weights, x.dtype).reshape(shape)
    )
  return y


def _resample_axis(x, axis: int, m: np.ndarray):
  """`_apply_rows` with the gradient written out as `_apply_rows` of the transpose.

  Autodiff would transpose the gathers into scatter-adds, which are ~100x slower than
  the forward pass on XLA:CPU.
  """

  @jax.custom_vjp
  def resample(x):
    return _apply_rows(x, axis, m)

  def resample_fwd(x):
    return resample(x), None

  def resample_bwd(_, g):
    return (_apply_rows(g, axis, m.T),)

  resample.defvjp(resample_fwd, resample_bwd)
  return resample(x)


def resize_bilinear(x, size: Sequence[int], align_corners: bool = False):
  """Bilinear resize to `size`, as `F.interpolate(x, size, mode='bilinear')`.

  Output pixel j samples the source coordinate
  - align_corners=False: (j + 0.5) * in / out - 0.5, clamped below at 0 (half-pixel
    centres; `jax.image.resize` uses these too, but antialiases when shrinking, which
    PyTorch does not);
  - align_corners=True: j * (in - 1) / (out - 1), so that corner pixels map onto each
    other;
  and interpolates linearly between its two neighbours (the last one repeated at the
  edge). Separable: rows, then columns, each a weighted sum of gathered rows, with the
  gradient written as gathers too: 2x up of 16x32x32x64 on 2 loaded CPU cores trains in
  1.7 ms, 65 ms with autodiff's scatter-adds (README, Models). No forward-mode autodiff.

  Args:
    x: (N, H, W, C).
    size: (out_h, out_w).
    align_corners: PyTorch's flag.

  Returns:
    (N, out_h, out_w, C), dtype of `x`.
  """
  for axis, out in zip((1, 2), size):
    if x.shape[axis] != out:  # an unchanged size is the identity in both modes
      x = _resample_axis(x, axis, _bilinear_matrix(x.shape[axis], out, align_corners))
  return x
