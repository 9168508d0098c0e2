"""BatchNorm over the channels of NHWC features, with its sums laid out for XLA:CPU.

`BatchNorm` is a drop-in replacement for `flax.linen.BatchNorm(axis=-1)` as our models use
it: the same variables (params `scale`, `bias`; batch_stats `mean`, `var`), the same
statistics (float32, E[x^2] - E[x]^2 clipped at zero, running averages updated outside
initialisation) and the same output dtype, so checkpoints and converted PyTorch weights
are unchanged.

What differs is how the per-channel sums are written. flax reduces x over (N, H, W) with
C minor; XLA:CPU turns such a reduction into a tree of reduce-windows whose loops stride
over memory (about 4x slower than a column sum on this CPU), and autodiff turns every
broadcast of a per-channel vector back into the same reduction. Here x is viewed as a
matrix of rows (N*H) by columns (W*C), every per-channel vector is tiled to W*C columns,
and all sums, forward and backward, become column sums of that matrix (contiguous,
vectorised) followed by a tiny sum over W. The values are the same up to float rounding
order. On GPUs and TPUs the column sum is an ordinary reduction.
"""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def _columns(x: jax.Array) -> tuple[jax.Array, int]:
  """x as [rows, W*C] (or [rows, C] below rank 3) and the W folded into the columns."""
  if x.ndim >= 3:
    width = x.shape[-2]
    return x.reshape(-1, width * x.shape[-1]), width
  return x.reshape(-1, x.shape[-1]), 1


def _channel_mean(columns: jax.Array, width: int, count: int) -> jax.Array:
  """Per-channel mean of a [rows, width * C] matrix: a column sum, then a sum over W."""
  per_column = jnp.sum(columns, axis=0)
  return jnp.sum(per_column.reshape(width, -1), axis=0) / count


class BatchNorm(nn.Module):
  """BatchNorm over the last axis; see the module docstring.

  Attributes:
    use_running_average: normalise with the running statistics (evaluation) instead of
      the batch's (training, which also updates them).
    momentum: decay of the running averages (flax's convention: PyTorch's 0.1 is 0.9).
    epsilon: added to the variance.
    dtype: dtype of the output (statistics and normalisation are float32).
    param_dtype: dtype of scale and bias.
    scale_init, bias_init: initialisers of scale (ones) and bias (zeros).
  """

  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Any = None
  param_dtype: Any = jnp.float32
  scale_init: Any = nn.initializers.ones
  bias_init: Any = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((channels,), jnp.float32))
    ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones((channels,), jnp.float32))
    scale = self.param('scale', self.scale_init, (channels,), self.param_dtype)
    bias = self.param('bias', self.bias_init, (channels,), self.param_dtype)

    stats_dtype = jnp.promote_types(x.dtype, jnp.float32)
    columns, width = _columns(x.astype(stats_dtype))
    if self.use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      count = columns.shape[0] * width
      mean = _channel_mean(columns, width, count)
      mean_sq = _channel_mean(columns * columns, width, count)
      var = jnp.maximum(0.0, mean_sq - mean * mean)
      if not self.is_initializing():
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var

    mul = jax.lax.rsqrt(var + self.epsilon) * scale
    tile = lambda v: jnp.tile(v, width)  # noqa: E731  per-channel -> per-column
    y = (columns - tile(mean)) * tile(mul) + tile(bias)
    dtype = self.dtype or jnp.result_type(x, scale, bias)
    return y.reshape(x.shape).astype(dtype)


def torch_batch_norm(train: bool, **fields) -> Callable[..., BatchNorm]:
  """`BatchNorm` with PyTorch's `BatchNorm2d` defaults, in the mode `train` asks for.

  PyTorch's momentum 0.1 weighs the new batch, flax's weighs the running average: 0.9
  here; eps 1e-5. Every family that converts PyTorch or Caffe weights uses these.

  Args:
    train: normalise with the batch's statistics (and update the running ones), or,
      when False, with the running statistics.
    **fields: other `BatchNorm` fields (dtype, param_dtype, scale_init, or epsilon
      where a reference differs, e.g. GoogLeNet's 1e-3).

  Returns:
    A partial of `BatchNorm`: call it with `name=` (and any field to override).
  """
  defaults = dict(momentum=0.9, epsilon=1e-5)
  return functools.partial(BatchNorm, use_running_average=not train, **{**defaults, **fields})
