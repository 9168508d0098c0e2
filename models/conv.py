"""`Conv`: flax's `nn.Conv` whose backward pass can be told to suit XLA:CPU.

Every family builds its convolutions with `Conv` (the same module, parameters and
values as `nn.Conv`). What it adds is a choice for the backward pass, made by whoever
traces the train step (train_lib/system.py picks it per platform), never by a model:

- 'plain': JAX's own differentiation of `lax.conv_general_dilated` (the default, and
  what every trace outside `conv_backward(...)` gets);
- 'copied': the same gradients, but the saved input and the incoming gradient are
  copied into fresh buffers before the kernel's gradient reads them. XLA:CPU computes
  the kernel's gradient as a convolution over transposed operands (batch <-> channels),
  and, left alone, fuses the elementwise ops that produced them (BatchNorm, ReLU, the
  residual sum) into those transposes, recomputing them in an order that strides
  through memory: about 40% of a CIFAR ResNet-20 training step on the 2-core CPU here
  (README, Performance). The copies are `lax.cond`s, because XLA fuses across
  `optimization_barrier` on CPU; a copy costs about a millisecond per 8 MB.
"""

import contextlib
import contextvars
import functools

import flax.linen as nn
import jax
from jax import lax

BACKWARDS = ('plain', 'copied')
_BACKWARD = contextvars.ContextVar('conv_backward', default='plain')


@contextlib.contextmanager
def conv_backward(mode: str):
  """Convolutions traced inside use backward pass `mode` (one of BACKWARDS)."""
  if mode not in BACKWARDS:
    raise ValueError(f"conv backward '{mode}' is not one of {BACKWARDS}")
  token = _BACKWARD.set(mode)
  try:
    yield
  finally:
    _BACKWARD.reset(token)


def _fresh_copy(x, predicate):
  """x, materialised by a conditional XLA cannot fuse its producers into."""
  return lax.cond(predicate, lambda a: a, lambda a: a + 0, x)


def conv_general_dilated(lhs, rhs, *args, **kwargs):
  """`lax.conv_general_dilated` with the backward pass chosen by `conv_backward`."""
  def conv(x, kernel):
    return lax.conv_general_dilated(x, kernel, *args, **kwargs)

  if _BACKWARD.get() == 'plain':
    return conv(lhs, rhs)

  @jax.custom_vjp
  def copied(x, kernel):
    return conv(x, kernel)

  def forward(x, kernel):
    return conv(x, kernel), (x, kernel)

  def backward(saved, grad):
    x, kernel = saved
    first = kernel.reshape(-1)[0]
    always = first == first  # noqa: PLR0124  runtime-true (NaN aside): not folded away
    x, grad = _fresh_copy(x, always), _fresh_copy(grad, always)
    return jax.vjp(conv, x, kernel)[1](grad)

  copied.defvjp(forward, backward)
  return copied(lhs, rhs)


Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
