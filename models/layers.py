"""Blocks shared by several families: local response normalization, centre crops,
convolution arithmetic.

Convolution arithmetic. Every convolution layer here (`nn.Conv`, and
`jax.lax.conv_general_dilated` where a family calls it directly) computes the
cross-correlation of the input I with the kernel K, as every framework does:

  S(i, j) = sum_m sum_n I(i + m, j + n) K(m, n)

The textbook convolution flips the kernel:

  S(i, j) = sum_m sum_n I(m, n) K(i - m, j - n) = sum_m sum_n I(i - m, j - n) K(m, n),

which is the cross-correlation with K rotated by 180 degrees (K[::-1, ::-1]). A learned
kernel absorbs the flip, so the two differ only in how a kernel written by hand reads.
Worked example: a 6x6 image whose three left columns are 10 and three right columns
are 0, cross-correlated ('VALID') with the vertical edge kernel [[1, 0, -1]] * 3 rows,
gives a 4x4 map whose every row is [0, 30, 30, 0]: the edge lights up where the window
straddles it. True convolution flips the kernel into [[-1, 0, 1]] * 3 and gives the
negated map, [0, -30, -30, 0] (`cross_correlate` and `convolve` below; tested in
tests/test_inspect.py).
"""

import jax
import jax.numpy as jnp


def local_response_norm(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
  """Local response normalization across channels, as `torch.nn.LocalResponseNorm`.

  b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta, the window
  centred on c with size // 2 channels before and (size - 1) // 2 after (zero padded).
  AlexNet (section 3.3) uses size=5, alpha=1e-4, beta=0.75, k=2; note that the paper
  writes alpha without the 1/size that PyTorch (and Caffe) divide by.
  """
  sq = jnp.square(x.astype(jnp.float32))
  c = x.shape[-1]
  padded = jnp.pad(sq, [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
  window_sum = sum(padded[..., i : i + c] for i in range(size))
  return (x / (k + alpha / size * window_sum) ** beta).astype(x.dtype)


def center_crop(x, height: int, width: int):
  """The centre height x width window of x's axes 1 and 2 (NHWC maps, or NHW labels).

  An odd surplus leaves its extra row (column) at the bottom (right), as U-Net's crop of
  the skip; an axis already no larger than asked is kept whole.
  """
  dh, dw = max(0, x.shape[1] - height), max(0, x.shape[2] - width)
  return x[
    :, dh // 2 : dh // 2 + min(height, x.shape[1]), dw // 2 : dw // 2 + min(width, x.shape[2])
  ]


def cross_correlate(x, kernel, padding: str = 'VALID'):
  """S(i, j) = sum_m sum_n I(i + m, j + n) K(m, n): what `nn.Conv` computes.

  Args:
    x: NHWC input.
    kernel: HWIO kernel, or an HxW kernel applied to each channel on its own.
    padding: 'VALID' (output (H - kh + 1) x (W - kw + 1)) or 'SAME'.
  """
  if kernel.ndim == 2:  # one 2-D kernel per channel: a depthwise convolution
    c = x.shape[-1]
    kernel = jnp.tile(kernel[:, :, None, None], (1, 1, 1, c))
    groups = c
  else:
    groups = 1
  return jax.lax.conv_general_dilated(
    x,
    kernel.astype(x.dtype),
    (1, 1),
    padding,
    feature_group_count=groups,
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
  )


def convolve(x, kernel, padding: str = 'VALID'):
  """Textbook S(i, j) = sum_m sum_n I(m, n) K(i - m, j - n): the kernel flipped in H, W."""
  return cross_correlate(x, kernel[::-1, ::-1], padding)
