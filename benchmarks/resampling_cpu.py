"""Forward and training-step (forward + backward) times of the resampling layers on
XLA:CPU, ours (models/resampling.py) against the formulations autodiff gives.

  JAX_PLATFORMS=cpu python benchmarks/resampling_cpu.py

Each line: the best of 15 interleaved runs of the jitted forward pass and of the
jitted forward + vector-Jacobian product with respect to every input (what a training
step runs). Figures vary with the machine's load; compare lines of one run.
"""

import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models import resampling as rs  # noqa: E402


def _seconds(fn, args):
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def bench(name: str, fn, *args, reps: int = 15) -> None:
  """Prints the best forward and forward + backward times of `fn(*args)` in ms."""
  forward = jax.jit(fn)
  cotangent = jax.random.normal(jax.random.key(1), jax.eval_shape(fn, *args).shape)

  @jax.jit
  def train(g, *args):
    _, vjp = jax.vjp(fn, *args)
    return vjp(g)

  for _ in range(2):  # compile and warm up
    _seconds(forward, args)
    _seconds(train, (cotangent, *args))
  fwd, step = [], []
  for _ in range(reps):
    fwd.append(_seconds(forward, args))
    step.append(_seconds(train, (cotangent, *args)))
  print(
    f'{name:58s} forward {1e3 * min(fwd):8.2f} ms   forward+backward {1e3 * min(step):8.2f} ms',
    flush=True,
  )


def normal(*shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape)


def _take_resize(x, size):
  """Bilinear resize (align_corners=False) by gathers left to autodiff (scatter-adds)."""
  for axis, out in zip((1, 2), size):
    n = x.shape[axis]
    src = np.maximum((np.arange(out) + 0.5) * n / out - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int32)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = out
    w1 = jnp.asarray(src - i0, x.dtype).reshape(shape)
    x = jnp.take(x, i0, axis=axis) * (1 - w1) + jnp.take(x, i1, axis=axis) * w1
  return x


def main():
  print(
    f'jax {jax.__version__}, {jax.devices()[0].platform}, '
    f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores'
  )
  # (batch, size, in, out, kernel, stride, padding, output_padding)
  for n, h, cin, cout, k, s, p, a in [
    (16, 32, 64, 32, 2, 2, 0, 0),  # U-Net up-conv
    (16, 32, 64, 32, 3, 2, 1, 1),
    (16, 32, 64, 32, 4, 2, 1, 0),
    (16, 56, 64, 64, 3, 1, 1, 0),
  ]:  # DeconvNet
    x, w = normal(n, h, h, cin), normal(k, k, cin, cout, seed=1)
    for name, fn in (('lax.conv_transpose', rs.conv_transpose_lax), ('ours', rs.conv_transpose)):
      bench(
        f'transposed conv {k}x{k}/{s} p{p} a{a} {cin}->{cout} b{n} {h}x{h} {name}',
        lambda x, w, fn=fn: fn(x, w, s, p, a),
        x,
        w,
      )

  x = normal(16, 64, 64, 64)
  bench('max pool 2x2/2 b16 64x64x64 nn.max_pool', lambda x: nn.max_pool(x, (2, 2), (2, 2)), x)
  bench('max pool 2x2/2 b16 64x64x64 ours (max_pool_2d)', lambda x: rs.max_pool_2d(x, 2), x)
  bench(
    'max pool 2x2/2 b16 64x64x64 reduction over a reshape',
    lambda x: x.reshape(16, 32, 2, 32, 2, 64).max(axis=(2, 4)),
    x,
  )
  y = normal(16, 63, 63, 64)
  bench(
    'max pool 3x3/2 ceil b16 63x63x64 nn.max_pool (padded)',
    lambda y: nn.max_pool(y, (3, 3), (2, 2), ((0, 1), (0, 1))),
    y,
  )
  bench(
    'max pool 3x3/2 ceil b16 63x63x64 ours', lambda y: rs.max_pool_2d(y, 3, 2, ceil_mode=True), y
  )

  def pool_unpool(x):
    return rs.max_unpool(*rs.max_pool_with_switches(x, 2), 2)

  bench('max pool with switches + unpool 2x2/2 b16 64x64x64 ours', pool_unpool, x)

  v = normal(16, 32, 32, 64)
  bench('bilinear 32->64 b16 x64 gathers + autodiff', lambda v: _take_resize(v, (64, 64)), v)
  bench(
    'bilinear 32->64 b16 x64 ours (resize_bilinear)', lambda v: rs.resize_bilinear(v, (64, 64)), v
  )
  bench(
    'bilinear 32->64 b16 x64 jax.image.resize',
    lambda v: jax.image.resize(v, (16, 64, 64, 64), 'bilinear'),
    v,
  )

  x = normal(16, 40, 40, 32)
  for d in (1, 2, 4, 8):
    w = normal(3, 3, 32, 32, seed=d)
    bench(
      f'conv 3x3 dilation {d} padding {d} 32->32 b16 40x40',
      lambda x, w, d=d: jax.lax.conv_general_dilated(
        x, w, (1, 1), [(d, d)] * 2, rhs_dilation=(d, d), dimension_numbers=('NHWC', 'HWIO', 'NHWC')
      ),
      x,
      w,
    )
  print(f'load average {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
  main()
