"""U-Net, DeconvNet and U^2-Net: exact parameter counts and sizes (architectures.md
sections 1c and 4), multiply-accumulates, and a training step of small instances.

Equality with PyTorch of `unet_same` (milesial) and `u2netp` (the U-2-Net repository)
is tested in test_pretrained.py through the weight converter."""

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_compile_options

from models import deconvnet, registry, u2net, unet
from train_lib.modes import costs

fast_jit = functools.partial(
  jax.jit,
  compiler_options=fast_compile_options(),
)

# name, constructor kwargs, input (N, H, W, C), parameters, output (H, W)
REFERENCE = [
  ('unet', dict(num_classes=2), (1, 572, 572, 1), 31_030_658, (388, 388)),
  # milesial/Pytorch-UNet, bias=False, 3 -> 2 (architectures.md section 1c)
  ('unet_same', dict(num_classes=2), (1, 64, 64, 3), 31_037_698, (64, 64)),
  ('deconvnet', dict(num_classes=21), (1, 224, 224, 3), 251_805_653, (224, 224)),
  ('u2net', dict(num_classes=1), (1, 64, 64, 3), 44_009_869, (64, 64)),
  ('u2netp', dict(num_classes=1), (1, 48, 40, 3), 1_131_181, (48, 40)),
]


def count(tree):
  return sum(math.prod(a.shape) for a in jax.tree.leaves(tree))


def rngs():
  return {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


def abstract_variables(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(lambda x: model.init(rngs(), x, train=False), x)


def abstract_apply(model, shape):
  """Variables, output and sown side outputs, all as shapes (nothing is computed)."""
  variables = abstract_variables(model, shape)
  out, state = jax.eval_shape(
    lambda v, x: model.apply(v, x, train=True, rngs=rngs(), mutable=['batch_stats', 'aux_logits']),
    variables,
    jax.ShapeDtypeStruct(shape, jnp.float32),
  )
  return variables, out, state


def test_every_variant_has_a_reference():
  assert {*unet.MODELS, *deconvnet.MODELS, *u2net.MODELS} == {r[0] for r in REFERENCE}


@pytest.mark.parametrize(
  'name,kwargs,shape,message',
  [
    ('unet', {}, (1, 570, 570, 1), 'even sizes before every pool'),  # 279 at pool 2
    ('unet', dict(up='bilinear'), (1, 572, 572, 1), 'transposed convolution'),
    ('unet_same', dict(up='nearest'), (1, 64, 64, 1), "'nearest' is not 'transpose' or 'bilinear'"),
    ('deconvnet', {}, (1, 192, 192, 3), 'fc6 (7x7) needs pool5 maps of at least 7x7'),
  ],
)
def test_bad_sizes_and_options_are_value_errors(name, kwargs, shape, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    abstract_variables(registry.MODELS[name](num_classes=2, **kwargs), shape)


@pytest.mark.parametrize('name,kwargs,shape,params,out_size', REFERENCE)
def test_reference_params_and_sizes(name, kwargs, shape, params, out_size):
  variables, out, state = abstract_apply(registry.MODELS[name](**kwargs), shape)
  assert count(variables['params']) == params
  assert out.shape == (shape[0], *out_size, kwargs['num_classes'])
  assert out.dtype == jnp.float32
  sides = state.get('aux_logits', {})
  if name.startswith('u2net'):  # six side outputs, upsampled to the input size
    assert sorted(sides) == [f'side_{k}' for k in range(1, 7)]
    assert all(s.shape == out.shape for (s,) in sides.values())
  else:
    assert not sides


def test_reference_macs():
  """architectures.md counts a transposed conv as the direct conv over the stretched
  input (out pixels x k^2 x in x out, zeros included): U-Net 167.3 GMACs at 572,
  DeconvNet 37.7 at 224. Our summary counts the multiplies that happen (in pixels x
  k^2 x in x out); the two agree on every other layer."""
  for name, classes, shape, reference in (
    ('unet', 2, (1, 572, 572, 1), 167.3),
    ('deconvnet', 21, (1, 224, 224, 3), 37.7),
  ):
    result = costs.summarize(registry.MODELS[name](num_classes=classes), shape)
    stretched = result.total_macs
    for layer in result.layers:
      if layer.type == 'ConvTranspose2d':
        out = layer.output_shapes[0]
        # macs = in_h * in_w * in_c * k^2 * out_c; stride s maps in to out pixels / s^2.
        s = 2 if name == 'unet' else 1  # U-Net's 2x2/2; DeconvNet's are stride 1
        in_pixels = (out[1] // s) * (out[2] // s) if layer.path != 'fc6_deconv' else 1
        stretched += layer.macs * out[1] * out[2] // in_pixels - layer.macs
    assert round(stretched / 1e9, 1) == reference, name
  # DeconvNet's transposed convs: fc6-deconv and the 13 deconvolutions.
  assert [layer.type for layer in result.layers].count('ConvTranspose2d') == 14


def filled(shapes, seed=0):
  """He-normal kernels, unit BN scales and small biases, from numpy (no RNG program)."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    if len(s.shape) > 1:
      scale = math.sqrt(2 / math.prod(s.shape[:-1]))
      return jnp.asarray(rng.standard_normal(s.shape) * scale, s.dtype)
    if 'var' in jax.tree_util.keystr(path) or 'scale' in jax.tree_util.keystr(path):
      return jnp.ones(s.shape, s.dtype)
    return jnp.full(s.shape, 0.01, s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


# Reduced instances: name, kwargs, input. The valid U-Net maps 60 -> 20 with two
# poolings; odd sizes exercise the same U-Net's padding and the pooling's ceil mode.
SMALL = [
  ('unet', dict(base_width=4, depth=2), (2, 60, 60, 1)),
  ('unet_same', dict(base_width=4, depth=2), (2, 18, 23, 1)),
  ('unet_same', dict(base_width=4, depth=2, up='bilinear'), (2, 18, 23, 1)),
  ('deconvnet', dict(base_width=4, fc_features=16, fc_kernel=2), (2, 64, 64, 3)),
  ('u2netp', dict(), (2, 30, 27, 3)),  # U^2-Net's reduced-width form
]


@pytest.mark.parametrize('name,kwargs,shape', SMALL)
def test_train_step_reduced_width(name, kwargs, shape):
  classes = 1 if name.startswith('u2net') else 3
  model = registry.MODELS[name](num_classes=classes, **kwargs)
  variables = filled(abstract_variables(model, shape))
  x = jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)

  def loss_fn(params):
    logits, state = model.apply(
      {**variables, 'params': params},
      x,
      train=True,
      rngs={'dropout': jax.random.key(1)},
      mutable=['batch_stats', 'aux_logits'],
    )
    sides = [s for (s,) in state.get('aux_logits', {}).values()]
    loss = sum(jnp.mean(jnp.square(y)) for y in [logits, *sides])
    return loss, (logits, sides)

  (loss, (logits, sides)), grads = fast_jit(jax.value_and_grad(loss_fn, has_aux=True))(
    variables['params']
  )
  assert np.isfinite(float(loss))
  out_h, out_w = (20, 20) if name == 'unet' else shape[1:3]
  assert logits.shape == (shape[0], out_h, out_w, classes)
  for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    assert np.all(np.isfinite(g)), jax.tree_util.keystr(path)
    assert np.any(g != 0), f'no gradient reaches {jax.tree_util.keystr(path)}'
  if sides:  # the fused map is the 1x1 outconv over the six side outputs (Fig. 5)
    fuse = variables['params']['outconv']
    expected = jnp.concatenate(sides, -1) @ fuse['kernel'][0, 0] + fuse['bias']
    np.testing.assert_allclose(logits, expected, atol=1e-4)
