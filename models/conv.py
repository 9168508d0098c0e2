"""`Conv`: flax's `nn.Conv`, with a backward pass for XLA:CPU under `backward.use('cpu')`.

Every family builds its convolutions with `Conv`: the same module, parameters and values
as `nn.Conv`. Under the 'cpu' backward (models/backward.py) the gradients are JAX's own,
but the saved input and the incoming gradient are copied into fresh buffers before the
kernel's gradient reads them. XLA:CPU computes a kernel gradient as a convolution over
transposed operands (batch <-> channels) and, left alone, fuses the elementwise ops that
produced them (BatchNorm, ReLU, the residual sum) into those transposes, recomputing
them in an order that strides through memory: about 40% of a CIFAR ResNet-20 training
step on the 2-core CPU here (README, Performance). The copies are `lax.cond`s because
XLA:CPU drops `optimization_barrier`s before it fuses; one costs about a millisecond
per 8 MB.
"""

import functools

import flax.linen as nn
import jax
from jax import lax

from models import backward


def _fresh_copy(x, predicate):
  """x, materialised by a conditional XLA cannot fuse its producers into."""
  return lax.cond(predicate, lambda a: a, lambda a: a + 0, x)


def conv_general_dilated(lhs, rhs, *args, **kwargs):
  """`lax.conv_general_dilated`, with the copies above under the 'cpu' backward."""

  def conv(x, kernel):
    return lax.conv_general_dilated(x, kernel, *args, **kwargs)

  if backward.current() == 'xla':
    return conv(lhs, rhs)

  @jax.custom_vjp
  def copied(x, kernel):
    return conv(x, kernel)

  def forward(x, kernel):
    return conv(x, kernel), (x, kernel)

  def backward_pass(saved, grad):
    x, kernel = saved
    first = kernel.reshape(-1)[0]
    always = first == first  # noqa: PLR0124  true at run time (NaN aside), not folded
    x, grad = _fresh_copy(x, always), _fresh_copy(grad, always)
    return jax.vjp(conv, x, kernel)[1](grad)

  copied.defvjp(forward, backward_pass)
  return copied(lhs, rhs)


Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
