"""The resolution-changing layers against their references: Dumoulin and Visin's
convolution arithmetic (architectures.md section 5), PyTorch (ConvTranspose2d,
MaxPool2d/MaxUnpool2d, F.interpolate, dilated Conv2d), jax.lax.conv_transpose, and a
hand-computed unpooling."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_compile_options

from models import pooling
from models import resampling as rs
from models.pooling import max_pool

try:
  import torch
  import torch.nn.functional as F
except ImportError:  # the size and hand-computed tests still run
  torch = F = None
needs_torch = pytest.mark.skipif(
  torch is None,
  reason='torch is not installed: the PyTorch reference tests run on Python 3.11 (CI)',
)

RNG = np.random.default_rng(0)

# One compiled program per case instead of one per operation; LLVM at -O0 compiles
# these tiny programs faster.
fast_jit = functools.partial(
  jax.jit,
  compiler_options=fast_compile_options(),
)


def to_torch(x):
  return torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2)


def from_torch(t):
  return t.detach().permute(0, 2, 3, 1).numpy()


def normal(*shape):
  return RNG.standard_normal(shape).astype(np.float32)


# --- convolution arithmetic ----------------------------------------------------------

# Relations 1-7 and 15: (i, k, s, p, d) -> o, the paper's examples.
CONV_EXAMPLES = [
  (4, 3, 1, 0, 1, 2),  # 1
  (5, 4, 1, 2, 1, 6),  # 2
  (5, 3, 1, 1, 1, 5),  # 3, half padding
  (5, 3, 1, 2, 1, 7),  # 4, full padding
  (5, 3, 2, 0, 1, 2),  # 5
  (5, 3, 2, 1, 1, 3),  # 6
  (6, 3, 2, 1, 1, 3),  # 6
  (7, 3, 1, 0, 2, 3),  # 15, dilation
]


@pytest.mark.parametrize('i,k,s,p,d,o', CONV_EXAMPLES)
def test_conv_output_size(i, k, s, p, d, o):
  assert rs.conv_output_size(i, k, s, p, d) == o
  y = jax.eval_shape(
    lambda x: nn.Conv(1, (k, k), s, p, kernel_dilation=d).init_with_output(jax.random.key(0), x)[0],
    jax.ShapeDtypeStruct((1, i, i, 1), jnp.float32),
  )
  assert y.shape[1] == o


# Relations 8-14: the transposed conv of a conv i -> i' (k, s, p) maps i' back to i,
# output_padding a = (i + 2p - k) mod s restoring the rows the conv's floor dropped.
# (relation, i, k, s, p, i', a, o')
TRANSPOSED_EXAMPLES = [
  (8, 4, 3, 1, 0, 2, 0, 4),  # relation 1's example, transposed
  (9, 5, 4, 1, 2, 6, 0, 5),  # relation 2's example, transposed
  (10, 5, 3, 1, 1, 5, 0, 5),
  (11, 5, 3, 1, 2, 7, 0, 5),
  (12, 5, 3, 2, 0, 2, 0, 5),
  (13, 5, 3, 2, 1, 3, 0, 5),
  (14, 6, 3, 2, 1, 3, 1, 6),
]


@needs_torch
@pytest.mark.parametrize('rel,i,k,s,p,i_t,a,o_t', TRANSPOSED_EXAMPLES)
def test_transposed_conv_relations(rel, i, k, s, p, i_t, a, o_t):
  assert rs.conv_output_size(i, k, s, p) == i_t
  assert (i + 2 * p - k) % s == a
  assert rs.conv_transpose_output_size(i_t, k, s, p, a) == o_t
  x, w = normal(2, i_t, i_t, 3), normal(k, k, 3, 4)
  ours, lax = fast_jit(
    lambda x, w: (rs.conv_transpose(x, w, s, p, a), rs.conv_transpose_lax(x, w, s, p, a))
  )(x, w)
  reference = from_torch(
    F.conv_transpose2d(
      to_torch(x), torch.from_numpy(w.transpose(2, 3, 0, 1)), stride=s, padding=p, output_padding=a
    )
  )
  assert ours.shape == reference.shape == (2, o_t, o_t, 4)
  np.testing.assert_allclose(ours, reference, atol=1e-5)
  np.testing.assert_allclose(lax, reference, atol=1e-5)


@pytest.mark.parametrize('i,k,s', [(3, 2, 2), (3, 3, 2), (4, 1, 3), (2, 5, 2)])
def test_lax_conv_transpose_same_and_valid_sizes(i, k, s):
  """jax.lax.conv_transpose: 'SAME' gives i*s, 'VALID' i*s + max(k - s, 0)."""
  x = jax.ShapeDtypeStruct((1, i, i, 1), jnp.float32)
  w = jax.ShapeDtypeStruct((k, k, 1, 1), jnp.float32)
  for padding, o in (('SAME', i * s), ('VALID', i * s + max(k - s, 0))):
    y = jax.eval_shape(
      lambda x, w: jax.lax.conv_transpose(
        x, w, (s, s), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
      ),
      x,
      w,
    )
    assert y.shape[1:3] == (o, o)


# (i, k, s, p, output_padding, dilation): U-Net's 2x2/2, DeconvNet's 3x3/1 p1 and its
# fc6-deconv (1 -> 7), a kernel smaller than the stride, padding beyond the kernel,
# dilation with output padding, and a non-square input.
CONV_TRANSPOSE_CASES = [
  ((4, 5), 2, 2, 0, 0, 1),
  (5, 3, 1, 1, 0, 1),
  (1, 7, 1, 0, 0, 1),
  (3, 1, 3, 0, 2, 1),
  (3, 5, 2, 4, 1, 1),
  (4, 3, 2, 1, 1, 2),
  ((3, 4), 4, 3, 2, 2, 1),
  (5, 4, 2, 1, 0, 1),
]


@needs_torch
@pytest.mark.parametrize('i,k,s,p,a,d', CONV_TRANSPOSE_CASES)
def test_conv_transpose_matches_torch_and_lax(i, k, s, p, a, d):
  h, w = (i, i) if isinstance(i, int) else i
  x, kernel = normal(2, h, w, 3), normal(k, k, 3, 4)
  xt = to_torch(x).requires_grad_()
  wt = torch.from_numpy(kernel.transpose(2, 3, 0, 1)).requires_grad_()  # (in, out, k, k)
  yt = F.conv_transpose2d(xt, wt, stride=s, padding=p, output_padding=a, dilation=d)
  g = normal(*from_torch(yt).shape)
  (yt * to_torch(g)).sum().backward()

  @fast_jit
  def run(x, kernel):
    results = []
    for fn in (rs.conv_transpose, rs.conv_transpose_lax):
      y, vjp = jax.vjp(lambda x, kernel: fn(x, kernel, s, p, a, d), x, kernel)
      results.append((y, *vjp(g)))
    return results

  (y, gx, gk), (y_lax, gx_lax, gk_lax) = run(x, kernel)
  assert y.shape == (
    2,
    rs.conv_transpose_output_size(h, k, s, p, a, d),
    rs.conv_transpose_output_size(w, k, s, p, a, d),
    4,
  )
  np.testing.assert_allclose(y, from_torch(yt), atol=1e-5)
  np.testing.assert_allclose(gx, from_torch(xt.grad), atol=1e-4)
  np.testing.assert_allclose(gk, wt.grad.numpy().transpose(2, 3, 0, 1), atol=1e-4)
  for ours, lax in ((y, y_lax), (gx, gx_lax), (gk, gk_lax)):
    np.testing.assert_allclose(ours, lax, atol=1e-4)


def test_conv_transpose_module_and_macs():
  x = normal(2, 5, 6, 3)
  module = rs.ConvTranspose2d(4, 3, strides=2, padding=1, output_padding=1)
  lax_module = rs.ConvTranspose2d(4, 3, strides=2, padding=1, output_padding=1, impl='lax')
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)
  assert jax.tree.map(lambda a: a.shape, shapes) == {
    'params': {'kernel': (3, 3, 3, 4), 'bias': (4,)}
  }
  variables = {'params': {'kernel': normal(3, 3, 3, 4), 'bias': normal(4)}}
  y, y_lax = fast_jit(lambda v, x: (module.apply(v, x), lax_module.apply(v, x)))(variables, x)
  np.testing.assert_allclose(y_lax, y, atol=1e-5)
  assert y.shape == (2, 10, 12, 4)
  # Each of the 2*5*6*3 input values meets 3*3 taps of 4 maps.
  assert module.macs(x.shape, y.shape) == 2 * 5 * 6 * 3 * 9 * 4


# --- max pooling with switches, unpooling --------------------------------------------

# One channel; the top-left window has a tie (5 at (0,0) and (0,1)): the first wins.
HAND_X = np.array([[5, 5, 2, 0], [3, 4, 8, 1], [9, 2, 0, 6], [1, 7, 3, 2]], np.float32)


@needs_torch
def test_unpooling_by_hand():
  x = HAND_X[None, :, :, None]
  values = np.array([[10, 20], [30, 40]], np.float32)[None, :, :, None]
  g = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)

  @fast_jit
  def run(x, values):
    pooled, switches = pooling.max_pool_with_switches(x, 2)
    unpooled, vjp = jax.vjp(lambda v: pooling.max_unpool(v, switches, 2), values)
    dx = jax.grad(
      lambda x: jnp.sum(pooling.max_unpool(*pooling.max_pool_with_switches(x, 2), 2) * g)
    )
    return pooled, switches, unpooled, vjp(g)[0], dx(x)

  pooled, switches, unpooled, dv, dx = run(x, values)
  np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 8], [9, 6]])
  np.testing.assert_array_equal(switches[0, :, :, 0], [[0, 6], [8, 11]])  # h * 4 + w
  _, torch_switches = F.max_pool2d(to_torch(x), 2, return_indices=True)
  np.testing.assert_array_equal(switches, from_torch(torch_switches))

  np.testing.assert_array_equal(
    unpooled[0, :, :, 0], [[10, 0, 0, 0], [0, 0, 20, 0], [30, 0, 0, 40], [0, 0, 0, 0]]
  )
  # Where the gradient goes: to each value from its switch, and through the pooling
  # only to the winning inputs.
  np.testing.assert_array_equal(dv[0, :, :, 0], [[1, 7], [9, 12]])
  np.testing.assert_array_equal(
    dx[0, :, :, 0], [[1, 0, 0, 0], [0, 0, 7, 0], [9, 0, 0, 12], [0, 0, 0, 0]]
  )


# (H, W, window, stride, padding, ceil_mode): DeconvNet's 2x2/2, odd sizes in both
# modes, GoogLeNet's 3x3/2 ceil (112 -> 56), overlapping windows with padding.
POOL_CASES = [
  (8, 6, 2, 2, 0, False),
  (7, 9, 2, 2, 0, True),
  (7, 9, 2, 2, 0, False),
  (9, 9, 3, 2, 1, True),
  (112, 112, 3, 2, 0, True),
  (11, 10, 3, 2, 1, False),
  (5, 5, 2, 1, 0, False),
]


@needs_torch
@pytest.mark.parametrize('h,w,k,s,p,ceil', POOL_CASES)
def test_pooling_and_unpooling_match_torch(h, w, k, s, p, ceil):
  x = normal(2, h, w, 3)
  x[0, 0, 1, 0] = x[0, 1, 0, 0] = x[0, 0, 0, 0] = 9.0  # a tie
  xt = to_torch(x).requires_grad_()
  yt, it = F.max_pool2d(xt, k, s, p, ceil_mode=ceil, return_indices=True)
  g = normal(*from_torch(yt).shape)
  (yt * to_torch(g)).sum().backward()

  @fast_jit
  def run(x):
    y, switches = pooling.max_pool_with_switches(x, k, s, p, ceil)
    dx = jax.grad(lambda x: jnp.sum(pooling.max_pool_2d(x, k, s, p, ceil) * g))(x)
    unpooled = pooling.max_unpool(y, switches, k, s, p, output_size=(h, w))
    return y, switches, max_pool(x, k, s, p, ceil), dx, unpooled

  y, switches, y_existing, dx, unpooled = run(x)
  np.testing.assert_array_equal(y, from_torch(yt))
  np.testing.assert_array_equal(switches, from_torch(it))
  np.testing.assert_array_equal(y_existing, y)  # models.pooling.max_pool
  np.testing.assert_array_equal(dx, from_torch(xt.grad))
  np.testing.assert_array_equal(
    unpooled, from_torch(F.max_unpool2d(yt, it, k, s, p, output_size=(h, w)))
  )


@needs_torch
def test_ceil_mode_sizes():
  def size(n, k, s, ceil):
    x = jax.ShapeDtypeStruct((1, n, n, 1), jnp.float32)
    return jax.eval_shape(lambda x: pooling.max_pool_2d(x, k, s, ceil_mode=ceil), x).shape[1]

  assert (size(112, 3, 2, True), size(112, 3, 2, False)) == (56, 55)
  assert (size(7, 2, 2, True), size(7, 2, 2, False)) == (4, 3)
  assert (size(5, 2, 2, True), size(3, 2, 2, True), size(1, 2, 2, True)) == (3, 2, 1)
  for n in range(4, 20):
    for k, s in ((2, 2), (3, 2)):
      expected = F.max_pool2d(torch.zeros(1, 1, n, n), k, s, ceil_mode=True).shape[2]
      assert size(n, k, s, True) == expected


# --- dilated convolution and bilinear resizing ---------------------------------------


@needs_torch
@pytest.mark.parametrize('d', [1, 2, 4, 8])
def test_dilated_conv_matches_torch(d):
  x, w = normal(2, 17, 19, 3), normal(4, 3, 3, 3)  # torch layout (out, in, kh, kw)
  conv = nn.Conv(4, (3, 3), padding=d, kernel_dilation=d, use_bias=False)
  y = fast_jit(conv.apply)({'params': {'kernel': w.transpose(2, 3, 1, 0)}}, x)
  reference = from_torch(F.conv2d(to_torch(x), torch.from_numpy(w), padding=d, dilation=d))
  assert y.shape == (2, 17, 19, 4)
  np.testing.assert_allclose(y, reference, atol=1e-5)


# (in, out) per axis: 2x up, down, non-integer both ways, U^2-Net's 32x side output,
# and one-pixel edges.
RESIZE_CASES = [
  ((4, 5), (8, 10)),
  ((9, 8), (4, 3)),
  ((3, 5), (5, 7)),
  ((2, 3), (64, 96)),
  ((1, 4), (3, 1)),
  ((6, 6), (6, 9)),
]


@needs_torch
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('size_in,size_out', RESIZE_CASES)
def test_resize_bilinear_matches_torch(size_in, size_out, align_corners):
  x = normal(2, *size_in, 3)
  xt = to_torch(x).requires_grad_()
  yt = F.interpolate(xt, size=size_out, mode='bilinear', align_corners=align_corners)
  g = normal(*from_torch(yt).shape)
  (yt * to_torch(g)).sum().backward()
  y, vjp = fast_jit(lambda x: jax.vjp(lambda x: rs.resize_bilinear(x, size_out, align_corners), x))(
    x
  )
  (dx,) = fast_jit(vjp)(g)
  np.testing.assert_allclose(y, from_torch(yt), atol=1e-5)
  np.testing.assert_allclose(dx, from_torch(xt.grad), rtol=1e-5, atol=1e-4)


def test_jax_image_resize_is_align_corners_false_without_antialias():
  @fast_jit
  def run(x):
    return [
      (jax.image.resize(x, (1, *size, 2), 'bilinear'), rs.resize_bilinear(x, size))
      for size in ((12, 15), (3, 3))
    ]

  (up, ours_up), (down, ours_down) = run(normal(1, 6, 6, 2))
  np.testing.assert_allclose(up, ours_up, atol=1e-5)
  assert not np.allclose(down, ours_down, atol=1e-3)  # antialiased: PyTorch is not
