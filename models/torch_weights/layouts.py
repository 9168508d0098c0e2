"""How one PyTorch tensor maps onto one of our arrays, in both directions.

PyTorch stores convolution kernels OIHW, transposed-convolution kernels IOHW and linear
weights (out, in); we store them HWIO, HWIO and (in, out). A linear layer right after a
flatten also differs in the order of its inputs: PyTorch flattens NCHW maps (channel
slowest), we flatten NHWC (channel fastest). Every layout is exact (permutations
only), so import followed by export gives back the same tensor.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Same:
  """Biases, BatchNorm scale, offset and running statistics: stored alike."""

  def to_ours(self, t: np.ndarray) -> np.ndarray:
    return t

  def to_torch(self, a: np.ndarray) -> np.ndarray:
    return a

  def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape)


@dataclasses.dataclass(frozen=True)
class Conv:
  """`nn.Conv2d.weight` (out, in, kh, kw) <-> flax `Conv` kernel (kh, kw, in, out)."""

  def to_ours(self, t: np.ndarray) -> np.ndarray:
    return t.transpose(2, 3, 1, 0)

  def to_torch(self, a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)

  def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    kh, kw, i, o = shape
    return (o, i, kh, kw)


@dataclasses.dataclass(frozen=True)
class ConvTranspose:
  """`nn.ConvTranspose2d.weight` (in, out, kh, kw) <-> our `ConvTranspose2d` kernel
  (kh, kw, in, out) (models/resampling.py, which has PyTorch's semantics: no flip)."""

  def to_ours(self, t: np.ndarray) -> np.ndarray:
    return t.transpose(2, 3, 0, 1)

  def to_torch(self, a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 0, 1)

  def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    kh, kw, i, o = shape
    return (i, o, kh, kw)


@dataclasses.dataclass(frozen=True)
class Dense:
  """`nn.Linear.weight` (out, in) <-> flax `Dense` kernel (in, out)."""

  def to_ours(self, t: np.ndarray) -> np.ndarray:
    return t.T

  def to_torch(self, a: np.ndarray) -> np.ndarray:
    return a.T

  def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[::-1])


@dataclasses.dataclass(frozen=True)
class FlattenedDense:
  """The first linear layer after flattening a (channels, height, width) map.

  PyTorch's input index is c * H * W + h * W + w, ours (h * W + w) * C + c: the rows
  are permuted besides the transpose.
  """

  channels: int
  height: int
  width: int

  def to_ours(self, t: np.ndarray) -> np.ndarray:
    out = t.shape[0]
    chw = t.reshape(out, self.channels, self.height, self.width)
    return chw.transpose(2, 3, 1, 0).reshape(-1, out)

  def to_torch(self, a: np.ndarray) -> np.ndarray:
    out = a.shape[1]
    hwc = a.reshape(self.height, self.width, self.channels, out)
    return hwc.transpose(3, 2, 0, 1).reshape(out, -1)

  def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[::-1])
