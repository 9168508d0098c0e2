"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based learning applied to
document recognition", section II.B and Fig. 2), and its common modern simplification.

`LeNet5` follows the paper:

- input 32x32, every layer up to F6 squashed by the scaled tanh 1.7159 tanh(2a/3);
- C1: 6 maps 5x5 (28x28); S2: 2x2 sums times a trainable coefficient plus a trainable
  bias per map (14x14);
- C3: 16 maps 5x5 (10x10) with the partial connection table of the paper's Table I:
  maps 0-5 see 3 contiguous S2 maps, 6-11 see 4 contiguous, 12-14 see 4 non-contiguous
  and 15 sees all 6, i.e. 60 connections. Its kernel is stored as one 5x5 filter per
  connection, shape (5, 5, 60), and scattered into a dense (5, 5, 6, 16) kernel whose
  other entries are zero, so the layer has exactly 60*25 + 16 = 1,516 parameters;
- S4 like S2 (5x5); C5: 120 maps 5x5 (1x1); F6: 84 units;
- output: ten Euclidean radial basis function units, y_i = sum_j (x_j - w_ij)^2, whose
  84-dimensional prototypes start as +-1 codes (the paper draws them as 7x12 bitmaps
  and keeps them fixed; here they are fixed random +-1 codes from the init key and are
  trained). The logits are -y_i, so softmax cross-entropy plays the role of the paper's
  MAP criterion.

C1..F6 hold 60,000 parameters and the RBF output 840 more (60,840). Weights start
normal with standard deviation F_i^-1/2, F_i the fan-in of the unit, the rule of
LeCun et al. 1998b ("Efficient BackProp", section 4.6) that keeps each weighted sum near
unit variance; the paper's own uniform +-2.4/F_i (Appendix C) shrinks the signal layer by
layer and trains much more slowly with plain SGD. The subsampling coefficients start at
1/4, so S2 and S4 begin as 2x2 averages.

`LeNet5Modern` is the form used by most tutorials: full C3, ReLU, parameter-free max
pooling, and fully connected 120-84-10 (61,706 parameters).
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models.conv import Conv
from models.pooling import max_pool

# Table I of the paper: which S2 maps (columns) feed each C3 map.
C3_TABLE = (
  (0, 1, 2),
  (1, 2, 3),
  (2, 3, 4),
  (3, 4, 5),
  (4, 5, 0),
  (5, 0, 1),
  (0, 1, 2, 3),
  (1, 2, 3, 4),
  (2, 3, 4, 5),
  (3, 4, 5, 0),
  (4, 5, 0, 1),
  (5, 0, 1, 2),
  (0, 1, 3, 4),
  (1, 2, 4, 5),
  (0, 2, 3, 5),
  (0, 1, 2, 3, 4, 5),
)


def scaled_tanh(x):
  """The paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3."""
  return 1.7159 * jnp.tanh(x * (2.0 / 3.0))


def fan_in_normal(fan_in: int | None = None):
  """Normal with std F_i^-1/2; the fan-in F_i from the kernel shape unless given."""

  def init(key, shape, dtype=jnp.float32):
    f = fan_in if fan_in is not None else int(np.prod(shape[:-1]))
    return jax.random.normal(key, shape, dtype) / np.sqrt(f)

  return init


class Subsampling(nn.Module):
  """S2/S4: 2x2 non-overlapping sums, a trainable coefficient and bias per map."""

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    coeff = self.param('coefficient', nn.initializers.constant(0.25), (c,), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros, (c,), self.param_dtype)
    x = nn.avg_pool(x, (2, 2), strides=(2, 2)) * 4.0
    return x * coeff.astype(self.dtype) + bias.astype(self.dtype)


class PartialConv(nn.Module):
  """C3: a 5x5 valid convolution whose input-output connections follow `table`."""

  features: int
  table: tuple[tuple[int, ...], ...]
  kernel_size: int = 5
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    out_idx = np.array([o for o, ins in enumerate(self.table) for _ in ins])
    in_idx = np.array([i for ins in self.table for i in ins])
    fan_in = np.array([len(self.table[o]) * k * k for o in out_idx], np.float32)

    def init(key, shape, dtype):
      return jax.random.normal(key, shape, dtype) / np.sqrt(fan_in).astype(dtype)

    kernel = self.param('kernel', init, (k, k, len(in_idx)), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros, (self.features,), self.param_dtype)
    # Scatter the 60 filters into a dense kernel with a constant one-hot map: a matmul,
    # whose gradient compiles far faster than that of an indexed update.
    placement = np.zeros((len(in_idx), x.shape[-1], self.features), np.float32)
    placement[np.arange(len(in_idx)), in_idx, out_idx] = 1.0
    dense = jnp.einsum('hwc,cio->hwio', kernel, jnp.asarray(placement, kernel.dtype))
    y = jax.lax.conv_general_dilated(
      x.astype(self.dtype),
      dense.astype(self.dtype),
      (1, 1),
      'VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    )
    return y + bias.astype(self.dtype)

  @nn.nowrap
  def macs(self, input_shape, output_shape) -> int:
    """Multiply-accumulates of one call: only the table's connections count."""
    del input_shape
    connections = sum(len(ins) for ins in self.table)
    return int(np.prod(output_shape[:-1])) * connections * self.kernel_size**2


class EuclideanRBF(nn.Module):
  """Output layer of radial basis units; returns logits -||x - w_i||^2."""

  num_classes: int
  train_prototypes: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    def init(key, shape, dtype):
      return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(dtype)

    w = self.param('prototypes', init, (x.shape[-1], self.num_classes), self.param_dtype)
    x = x.astype(jnp.float32)
    w = w.astype(jnp.float32)
    if not self.train_prototypes:
      w = jax.lax.stop_gradient(w)
    sq = jnp.sum(x * x, -1, keepdims=True) - 2.0 * x @ w + jnp.sum(w * w, 0)
    return -sq

  @nn.nowrap
  def macs(self, input_shape, output_shape) -> int:
    """Multiply-accumulates of one call: the x @ w term, as a Dense layer."""
    del output_shape
    return int(np.prod(input_shape)) * self.num_classes


class LeNet5(nn.Module):
  """LeNet-5 as in the 1998 paper (Fig. 2); expects 32x32 inputs."""

  num_classes: int = 10
  output: str = 'rbf'  # 'rbf' (the paper's) or 'softmax' (a linear layer, 850 params)
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train  # No dropout or batch statistics in LeNet-5.
    conv = lambda f, name: Conv(  # noqa: E731
      f,
      (5, 5),
      padding='VALID',
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=fan_in_normal(),
      name=name,
    )
    x = x.astype(self.dtype)
    x = scaled_tanh(conv(6, 'C1')(x))
    x = scaled_tanh(Subsampling(self.dtype, self.param_dtype, name='S2')(x))
    x = scaled_tanh(
      PartialConv(16, C3_TABLE, dtype=self.dtype, param_dtype=self.param_dtype, name='C3')(x)
    )
    x = scaled_tanh(Subsampling(self.dtype, self.param_dtype, name='S4')(x))
    x = scaled_tanh(conv(120, 'C5')(x))
    x = x.reshape((x.shape[0], -1))
    x = scaled_tanh(
      nn.Dense(
        84, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=fan_in_normal(), name='F6'
      )(x)
    )
    if self.output == 'rbf':
      return EuclideanRBF(
        self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype, name='output'
      )(x)
    return nn.Dense(
      self.num_classes,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=fan_in_normal(),
      name='output',
    )(x).astype(jnp.float32)


class LeNet5Modern(nn.Module):
  """LeNet-5 as most tutorials write it: ReLU, max pooling, full C3, FC 120-84-10."""

  num_classes: int = 10
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    dense = lambda f, name: nn.Dense(  # noqa: E731
      f, dtype=self.dtype, param_dtype=self.param_dtype, name=name
    )
    x = x.astype(self.dtype)
    x = nn.relu(
      Conv(6, (5, 5), padding='VALID', dtype=self.dtype, param_dtype=self.param_dtype, name='C1')(x)
    )
    x = max_pool(x, 2, 2)
    x = nn.relu(
      Conv(16, (5, 5), padding='VALID', dtype=self.dtype, param_dtype=self.param_dtype, name='C3')(
        x
      )
    )
    x = max_pool(x, 2, 2)
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(dense(120, 'C5')(x))
    x = nn.relu(dense(84, 'F6')(x))
    return dense(self.num_classes, 'output')(x).astype(jnp.float32)


MODELS = {
  'lenet5': LeNet5,
  'lenet5_modern': LeNet5Modern,
  'lenet5_softmax': functools.partial(LeNet5, output='softmax'),
}
