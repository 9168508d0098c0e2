"""Tests for GoogLeNet: exact parameter counts, ceil-mode pooling, feature sizes, the
aux heads, gradients, the initialisers and the config file."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import fast_compile_options

from configs import default, imagenet_googlenet
from models import googlenet, pooling, registry
from models.pooling import max_pool
from train_lib.modes import costs

MODELS = googlenet.MODELS

# Both options only make XLA compile faster on CPU (together about 4x for the gradient
# test): LLVM at -O0, and the older elemental emitters for fusions.
fast_jit = functools.partial(
  jax.jit,
  compiler_options=fast_compile_options(),
)

# architectures.md section 1a ([TV] and [CALC]): (name, aux_logits) -> parameters.
EXPECTED_PARAMS = {
  ('googlenet', False): 6_624_904,
  ('googlenet', True): 13_004_888,
  ('googlenet_paper', False): 6_998_552,
  ('googlenet_paper', True): 13_378_280,
}


def count_params(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def abstract_variables(model, size, batch=1):
  x = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def test_every_variant_has_expected_counts():
  assert {name for name, _ in EXPECTED_PARAMS} == set(MODELS)


@pytest.mark.parametrize('name,aux', sorted(EXPECTED_PARAMS))
def test_param_count(name, aux):
  variables = abstract_variables(MODELS[name](num_classes=1000, aux_logits=aux), 224)
  assert count_params(variables['params']) == EXPECTED_PARAMS[name, aux]
  # BN running statistics are not parameters; the paper's net has none.
  assert ('batch_stats' in variables) == (name == 'googlenet')
  if aux:  # init in training mode builds the same heads and sows nothing
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    model = MODELS[name](num_classes=1000, aux_logits=True)
    train_vars = jax.eval_shape(
      lambda x: model.init(
        {'params': jax.random.key(0), 'dropout': jax.random.key(1)}, x, train=True
      ),
      x,
    )
    assert set(train_vars) == set(variables)
    assert count_params(train_vars['params']) == EXPECTED_PARAMS[name, aux]


# architectures.md section 1a: torchvision's 1.498 GMACs, [CALC] 1.583 for the paper's.
@pytest.mark.parametrize('name,gmacs', [('googlenet', 1.498), ('googlenet_paper', 1.583)])
def test_macs(name, gmacs):
  s = costs.summarize(MODELS[name](num_classes=1000), (1, 224, 224, 3))
  assert round(s.total_macs / 1e9, 3) == gmacs


@pytest.mark.parametrize('name', sorted(MODELS))
def test_output_shape_and_feature_sizes(name):
  model = MODELS[name](num_classes=1000, aux_logits=True, dtype=jnp.bfloat16)
  variables = abstract_variables(model, 224, batch=2)
  x = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  logits, state = jax.eval_shape(
    lambda v, x: model.apply(
      v, x, train=False, capture_intermediates=True, mutable=['intermediates', 'aux_logits']
    ),
    variables,
    x,
  )
  assert logits.shape == (2, 1000) and logits.dtype == jnp.float32
  assert 'aux_logits' not in state  # the aux heads do not run in eval
  inter = state['intermediates']
  assert 'aux1' not in inter and 'aux2' not in inter
  # Table 1: 28x28 after the stem, 14x14 after maxpool3, 7x7 after maxpool4.
  for module, shape in (
    ('inception3b', (28, 28, 480)),
    ('inception4e', (14, 14, 832)),
    ('inception5b', (7, 7, 1024)),
  ):
    assert inter[module]['__call__'][0].shape == (2,) + shape, module


def test_ceil_mode_pool_size():
  x = jnp.zeros((1, 112, 112, 1))
  assert max_pool(x, 3, 2, ceil_mode=True).shape[1:3] == (56, 56)
  assert max_pool(x, 3, 2, ceil_mode=False).shape[1:3] == (55, 55)
  # maxpool4 at 224: 14 -> 7 both as torchvision (2x2/2) and the paper (3x3/2, ceil).
  x = jnp.zeros((1, 14, 14, 1))
  assert max_pool(x, 2, 2, ceil_mode=True).shape[1:3] == (7, 7)
  assert max_pool(x, 3, 2, ceil_mode=True).shape[1:3] == (7, 7)
  assert max_pool(x, 3, 2, ceil_mode=False).shape[1:3] == (6, 6)


def numpy_max_pool(x, k, s, p, out_hw):
  """Max over windows starting at i*s - p, clipped to the image (ceil mode's last
  windows hang over the bottom/right edge)."""
  out = np.empty(out_hw + x.shape[2:], x.dtype)
  for i in range(out_hw[0]):
    for j in range(out_hw[1]):
      r, c = i * s - p, j * s - p
      out[i, j] = x[max(r, 0) : r + k, max(c, 0) : c + k].max(axis=(0, 1))
  return out


# A 7x10 input; output sizes worked out by hand from PyTorch's ceil-mode rule.
@pytest.mark.parametrize(
  'k,s,p,out_hw',
  [
    (3, 2, 0, (3, 5)),  # 7: ceil(4/2)+1 = 3; 10: ceil(7/2)+1 = 5 (floor: 4)
    (2, 2, 0, (4, 5)),  # 7: ceil(5/2)+1 = 4 (floor: 3); 10: 5
    (3, 2, 1, (4, 6)),  # 7: ceil(6/2)+1 = 4; 10: ceil(9/2)+1 = 6 (floor: 5)
    (2, 2, 1, (4, 6)),  # 7: ceil(7/2)+1 = 5, but the 5th window starts in the pad: 4
    (3, 1, 1, (7, 10)),  # the Inception pool branch keeps the size
  ],
)
def test_ceil_mode_max_pool_matches_numpy(k, s, p, out_hw):
  x = np.random.default_rng(0).normal(size=(7, 10, 3)).astype(np.float32)
  y = max_pool(jnp.asarray(x)[None], k, s, padding=p, ceil_mode=True)[0]
  np.testing.assert_array_equal(np.asarray(y), numpy_max_pool(x, k, s, p, out_hw))


@pytest.mark.parametrize('n', [14, 5, 3])
def test_adaptive_avg_pool_matches_torch_bins(n):
  x = np.random.default_rng(n).normal(size=(2, n, n + 1, 3)).astype(np.float32)

  def bins(size):  # torch: [floor(i * in / out), ceil((i + 1) * in / out))
    return [(math.floor(i * size / 4), math.ceil((i + 1) * size / 4)) for i in range(4)]

  want = np.array(
    [[x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in bins(n + 1)] for r0, r1 in bins(n)]
  ).transpose(2, 0, 1, 3)
  pool = pooling.adaptive_avg_pool
  got = jax.jit(pool, static_argnums=1)(jnp.asarray(x), (4, 4))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)
  if n == 14:  # overlapping bins, as in torchvision's aux heads at 224 input
    assert bins(14) == [(0, 4), (3, 7), (7, 11), (10, 14)]


def test_transform_input():
  raw = np.random.default_rng(0).uniform(size=(2, 5, 5, 3)).astype(np.float32)
  model = googlenet.GoogLeNet()  # torchvision's ImageNet statistics by default
  mean, std = np.array(model.input_mean), np.array(model.input_std)
  got = googlenet.torchvision_transform_input(jnp.asarray((raw - mean) / std), mean, std)
  np.testing.assert_allclose(np.asarray(got), (raw - 0.5) / 0.5, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('scheme', sorted(googlenet.INITS))
def test_initialisers(scheme):
  conv = googlenet.BasicConv2d(256, 3, batch_norm=False, init_scheme=scheme)
  params = conv.init(jax.random.key(0), jnp.zeros((1, 4, 4, 64)), train=False)['params']
  kernel, bias = np.asarray(params['conv']['kernel']), np.asarray(params['conv']['bias'])
  if scheme == 'torchvision':  # N(0, 0.01)
    assert abs(kernel.std() - 0.01) < 1e-3 and np.all(bias == 0.0)
  else:  # Caffe "xavier": U(+-sqrt(3 / fan_in)), bias 0.2
    limit = math.sqrt(3.0 / (3 * 3 * 64))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert np.all(bias == np.float32(0.2))


def filled_params(shapes, seed=0):
  """He-normal kernels and small biases from numpy: init without compiling RNG code."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    leaf = jax.tree_util.keystr(path)
    if len(s.shape) > 1:
      scale = np.float32(math.sqrt(2 / np.prod(s.shape[:-1])))
      return jnp.asarray(rng.standard_normal(s.shape, np.float32) * scale, s.dtype)
    return jnp.full(s.shape, 1.0 if 'scale' in leaf else 0.01, s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_train_step_gradients_and_aux_logits(name):
  # 96x96: large enough for the paper's 5x5/3 aux pool at 4a (6x6 there).
  model = MODELS[name](num_classes=5, aux_logits=True)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 96, 96, 3)), jnp.float32)
  labels = jnp.array([1, 3])
  shapes = abstract_variables(model, 96, batch=2)
  variables = {**shapes, 'params': filled_params(shapes['params'])}
  if 'batch_stats' in shapes:
    variables['batch_stats'] = jax.tree.map(
      lambda s: jnp.zeros(s.shape, s.dtype), shapes['batch_stats']
    )

  def loss_fn(params):
    logits, state = model.apply(
      {**variables, 'params': params},
      x,
      train=True,
      rngs={'dropout': jax.random.key(1)},
      mutable=['batch_stats', 'aux_logits'],
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    for aux in jax.tree.leaves(state['aux_logits']):  # section 5: weight 0.3
      loss += 0.3 * optax.softmax_cross_entropy_with_integer_labels(aux, labels).mean()
    return loss, (logits, state['aux_logits'])

  (loss, (logits, aux)), grads = fast_jit(jax.value_and_grad(loss_fn, has_aux=True))(
    variables['params']
  )
  assert logits.shape == (2, 5) and np.isfinite(float(loss))
  assert set(aux) == {'aux1', 'aux2'}
  for head in ('aux1', 'aux2'):
    (aux_logits,) = aux[head]['logits']
    assert aux_logits.shape == (2, 5) and aux_logits.dtype == jnp.float32
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  assert len(flat) == len(jax.tree.leaves(variables['params']))
  for path, g in flat:
    g = np.asarray(g)
    assert np.all(np.isfinite(g)), jax.tree_util.keystr(path)
    assert np.any(g != 0), f'no gradient reaches {jax.tree_util.keystr(path)}'


@pytest.mark.parametrize('name', sorted(MODELS))
def test_no_aux_logits_without_aux_heads(name):
  # With aux heads: sown in training (test_train_step_...), not in eval (test_output_...).
  model = MODELS[name](num_classes=5, aux_logits=False)
  variables = abstract_variables(model, 96)
  x = jax.ShapeDtypeStruct((1, 96, 96, 3), jnp.float32)
  _, state = jax.eval_shape(
    lambda v, x: model.apply(
      v, x, train=True, rngs={'dropout': jax.random.key(0)}, mutable=['batch_stats', 'aux_logits']
    ),
    variables,
    x,
  )
  assert 'aux_logits' not in state
  assert 'aux1' not in variables['params'] and 'aux2' not in variables['params']


def test_paper_aux_pool_rejects_small_inputs():
  model = MODELS['googlenet_paper'](num_classes=5, aux_logits=True)
  with pytest.raises(ValueError, match='5x5/3 aux pool'):
    abstract_variables(model, 64)


def flat_keys(config, prefix=''):
  keys = set()
  for k, v in config.items():
    if hasattr(v, 'items'):
      keys |= flat_keys(v, f'{prefix}{k}.')
    else:
      keys.add(prefix + k)
  return keys


@pytest.mark.parametrize(
  'arg,name,size,count',
  [
    ('', 'googlenet', 224, EXPECTED_PARAMS['googlenet', True]),
    ('paper', 'googlenet_paper', 224, EXPECTED_PARAMS['googlenet_paper', True]),
    ('smoke', 'googlenet', 64, EXPECTED_PARAMS['googlenet', True]),
    ('paper,smoke', 'googlenet_paper', 96, None),  # fc1 sees 1x1 maps at 96
  ],
)
def test_config_builds(monkeypatch, arg, name, size, count):
  config = imagenet_googlenet.get_config(arg)
  # Only the base config's fields (the model's own fields live under config.model).
  extra = {
    k for k in flat_keys(config) - flat_keys(default.get_config()) if not k.startswith('model.')
  }
  assert not extra
  assert config.model.name == name and config.input.image_size == size
  assert config.dataset.name == 'imagenet2012' and config.dataset.num_classes == 1000
  assert config.model.aux_logits and config.aux_loss_weight == 0.3
  if not arg:
    assert config.lr_boundaries_epochs[:2] == (8.0, 16.0)
    assert len(config.lr_boundaries_epochs) == 31 and config.lr_decay == 0.96
  monkeypatch.setattr(registry, 'MODELS', {**registry.MODELS, **MODELS})
  model = registry.create_model(
    config.model, num_classes=config.dataset.num_classes, dtype=jnp.float32
  )
  variables = abstract_variables(model, config.input.image_size)
  if count is not None:
    assert count_params(variables['params']) == count


def test_config_rejects_bad_strings():
  with pytest.raises(ValueError):
    imagenet_googlenet.get_config('resnet')
