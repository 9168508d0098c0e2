"""Tests for AlexNet and VGG: exact parameter counts, shapes, gradients, pooling, LRN."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_compile_options

from configs import imagenet_alexnet, imagenet_vgg
from models import alexnet, vgg
from models.layers import local_response_norm

MODELS = {**alexnet.MODELS, **vgg.MODELS}

# architectures.md section 1a ([TV]) and the [CALC] notes (original AlexNet, VGG C).
EXPECTED_PARAMS = {
  'alexnet': 61_100_840,
  'alexnet_original': 60_965_224,
  'vgg11': 132_863_336,
  'vgg11_lrn': 132_863_336,
  'vgg13': 133_047_848,
  'vgg16_c': 133_638_952,
  'vgg16': 138_357_544,
  'vgg19': 143_667_240,
  'vgg11_bn': 132_868_840,
  'vgg13_bn': 133_053_736,
  'vgg16_bn': 138_365_992,
  'vgg19_bn': 143_678_248,
}

# Smallest inputs that survive AlexNet's stride-4 conv1 and three 3x3/2 pools; the
# adaptive pool restores 6x6.
TINY_SIZE = {'alexnet': 63, 'alexnet_original': 67}

# These graphs run once on tiny inputs, so XLA's CPU compile time (LLVM optimizing each
# fusion) dominates; compiling without the optimizations halves it.
jit = functools.partial(
  jax.jit,
  compiler_options=fast_compile_options(),
)
# The 'rbg' generator compiles faster on CPU than the default threefry.
DROPOUT_RNG = {'dropout': jax.random.key(2, impl='rbg')}


def full_size(name):
  return 227 if name == 'alexnet_original' else 224


def count_params(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def abstract_variables(model, size):
  x = jnp.zeros((1, size, size, 3), jnp.float32)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


def test_every_model_has_an_expected_count():
  assert set(MODELS) == set(EXPECTED_PARAMS)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_param_count_and_output_shape(name):
  model = MODELS[name](num_classes=1000)
  variables = abstract_variables(model, full_size(name))
  assert count_params(variables['params']) == EXPECTED_PARAMS[name]
  x = jnp.zeros((2, full_size(name), full_size(name), 3), jnp.float32)
  out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  assert out.shape == (2, 1000) and out.dtype == jnp.float32


@pytest.mark.parametrize('name', ['alexnet', 'vgg16_bn'])
def test_custom_classes_and_bfloat16(name):
  model = MODELS[name](num_classes=17, dtype=jnp.bfloat16)
  variables = abstract_variables(model, full_size(name))
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))
  x = jnp.zeros((3, full_size(name), full_size(name), 3), jnp.float32)
  out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  assert out.shape == (3, 17) and out.dtype == jnp.float32


def numpy_variables(model, x):
  """Variables of the right structure, filled by numpy (He-scaled), skipping init.

  Compiling `model.init` (a forward pass plus the random number generator) costs more
  on CPU than the test itself; the initializers are checked separately.
  """
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  # One block of normal draws, cycled (drawing tens of millions takes seconds).
  pool = np.random.RandomState(0).randn(100_003).astype(np.float32)

  def fill(path, s):
    leaf = jax.tree_util.keystr(path)
    if 'kernel' in leaf:
      return np.resize(pool, s.shape) * np.float32(np.sqrt(2.0 / np.prod(s.shape[:-1])))
    if 'scale' in leaf or "'var'" in leaf:
      return np.ones(s.shape, s.dtype)
    return 0.01 * np.resize(pool[::-1], s.shape)  # biases, BN offset and mean

  return jax.tree_util.tree_map_with_path(fill, shapes)


# Every code path gets a gradient check: each AlexNet (the original with LRN and groups),
# VGG with 3x3 and 1x1 convs (config C), VGG with BatchNorm. The other variants run the
# same code with other depths; for them only the forward passes are compiled (a backward
# pass costs seconds of CPU compile time).
GRADIENT_CHECKED = ('alexnet', 'alexnet_original', 'vgg16_c', 'vgg11_bn')


@pytest.mark.parametrize('name', sorted(MODELS))
def test_train_and_eval_tiny(name):
  # Full conv widths (fixed by the tables) on tiny images, a narrow classifier. VGG gets
  # 48x48 (block 5 at 3x3, then 1x1 into the adaptive pool): XLA's CPU convs are much
  # slower on 2x2 maps than on 3x3 ones.
  size = TINY_SIZE.get(name, 48)
  model = MODELS[name](num_classes=5, fc_features=32)
  x = np.random.RandomState(1).randn(2, size, size, 3).astype(np.float32)
  labels = jnp.array([1, 3])
  variables = numpy_variables(model, x)
  others = {k: v for k, v in variables.items() if k != 'params'}

  def loss_fn(params):
    logits, updates = model.apply(
      {'params': params, **others}, x, train=True, mutable=list(others), rngs=DROPOUT_RNG
    )
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], 1)), (logits, updates)

  @jit
  def step(params):
    if name in GRADIENT_CHECKED:
      (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    else:
      (loss, aux), grads = loss_fn(params), None
    eval_logits = model.apply({'params': params, **others}, x, train=False)
    return loss, aux, grads, eval_logits

  loss, (train_logits, updates), grads, eval_logits = step(variables['params'])
  assert np.isfinite(float(loss))
  for logits in (train_logits, eval_logits):
    assert logits.shape == (2, 5) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
  assert not np.allclose(train_logits, eval_logits)  # dropout (and batch statistics)
  if name.endswith('_bn'):  # training mode updates every running statistic
    new = jax.tree.leaves(updates['batch_stats'])
    old = jax.tree.leaves(others['batch_stats'])
    assert all(not np.allclose(a, b) for a, b in zip(new, old))
  if grads is not None:
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
      g = np.asarray(g)
      assert np.all(np.isfinite(g)), path
      assert np.any(g != 0), f'no gradient reaches {jax.tree_util.keystr(path)}'


def test_alexnet_original_layers():
  variables = abstract_variables(MODELS['alexnet_original'](num_classes=1000), 227)
  shapes = {k: v['kernel'].shape for k, v in variables['params'].items()}
  # Two groups on conv2, conv4 and conv5 (section 3.2): each sees half of its inputs.
  assert shapes == {
    'conv1': (11, 11, 3, 96),
    'conv2': (5, 5, 48, 256),
    'conv3': (3, 3, 256, 384),
    'conv4': (3, 3, 192, 384),
    'conv5': (3, 3, 192, 256),
    'fc6': (9216, 4096),
    'fc7': (4096, 4096),
    'fc8': (4096, 1000),
  }
  # Without the groups it is the 62,378,344-parameter single-tower net.
  dense = alexnet.AlexNetOriginal(num_classes=1000, groups=1)
  assert count_params(abstract_variables(dense, 227)['params']) == 62_378_344


def test_alexnet_original_paper_init():
  model = MODELS['alexnet_original'](num_classes=10, fc_features=64)
  init = jit(lambda x: model.init(jax.random.key(0), x, train=False))
  params = init(jnp.zeros((1, 67, 67, 3)))['params']
  for name in ('conv2', 'conv4', 'conv5', 'fc6', 'fc7'):
    np.testing.assert_array_equal(params[name]['bias'], 1.0)
  for name in ('conv1', 'conv3', 'fc8'):
    np.testing.assert_array_equal(params[name]['bias'], 0.0)
  assert abs(float(jnp.std(params['conv3']['kernel'])) - 0.01) < 5e-4


def test_vgg_table_weight_layers():
  # Table 1's depths count the convolutions plus the three fully connected layers.
  depth = {
    k: sum(isinstance(layer, int) for b in v for layer in b) + 3 for k, v in vgg.CONFIGS.items()
  }
  assert depth == {'A': 11, 'A-LRN': 11, 'B': 13, 'C': 16, 'D': 16, 'E': 19}
  variables = abstract_variables(MODELS['vgg16_c'](num_classes=1000), 224)
  assert variables['params']['conv3_3']['kernel'].shape == (1, 1, 256, 256)
  assert variables['params']['conv5_3']['kernel'].shape == (1, 1, 512, 512)


def test_vgg_lrn_is_applied():
  # A-LRN has A's parameters; the same parameters give other logits.
  x = np.random.RandomState(1).randn(1, 48, 48, 3).astype(np.float32)
  a, a_lrn = (MODELS[n](num_classes=5, fc_features=32) for n in ('vgg11', 'vgg11_lrn'))
  variables = numpy_variables(a, x)
  out, out_lrn = jit(lambda v: (a.apply(v, x, train=False), a_lrn.apply(v, x, train=False)))(
    variables
  )
  assert np.all(np.isfinite(out_lrn)) and not np.allclose(out, out_lrn)


def test_adaptive_avg_pool_hand_computed():
  # Height 5 -> 3: windows [0, 2), [1, 4), [3, 5); width 2 -> 3: [0, 1), [0, 2), [1, 2).
  x = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.0, 13.0], [4.0, 14.0]])
  expected = np.array([[0.5, 5.5, 10.5], [2.0, 7.0, 12.0], [3.5, 8.5, 13.5]])
  out = alexnet.adaptive_avg_pool(jnp.asarray(x)[None, :, :, None], (3, 3))
  np.testing.assert_allclose(out[0, :, :, 0], expected, rtol=1e-6)
  # 1x1 -> 7x7 replicates (VGG on small images).
  out = alexnet.adaptive_avg_pool(jnp.full((1, 1, 1, 2), 3.0), 7)
  np.testing.assert_array_equal(out, np.full((1, 7, 7, 2), 3.0))


@pytest.mark.parametrize(
  'in_hw,out_hw', [((13, 13), (6, 6)), ((14, 10), (7, 5)), ((5, 6), (7, 7)), ((6, 6), (6, 6))]
)
def test_adaptive_avg_pool_matches_torch_rule(in_hw, out_hw):
  x = np.random.RandomState(0).randn(2, *in_hw, 3).astype(np.float32)
  expected = np.zeros((2, *out_hw, 3), np.float32)
  for i in range(out_hw[0]):
    h0, h1 = (i * in_hw[0]) // out_hw[0], -(-((i + 1) * in_hw[0]) // out_hw[0])
    for j in range(out_hw[1]):
      w0, w1 = (j * in_hw[1]) // out_hw[1], -(-((j + 1) * in_hw[1]) // out_hw[1])
      expected[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
  out = alexnet.adaptive_avg_pool(jnp.asarray(x), out_hw)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_local_response_norm_hand_computed():
  # size 3, alpha 3 (alpha / size = 1), beta 1, k 1: b_c = a_c / (1 + sum of squares of
  # channels c-1..c+1); channel sums of squares 1+4, 1+4+9, 4+9.
  x = jnp.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)
  out = local_response_norm(x, size=3, alpha=3.0, beta=1.0, k=1.0)
  np.testing.assert_allclose(out.ravel(), [1 / 6, 2 / 15, 3 / 14], rtol=1e-6)
  # AlexNet's values, size 5 (window c-2..c+2): channel 0 of [2, 0, 1, 5] sums 4 + 0 + 1.
  x = jnp.array([2.0, 0.0, 1.0, 5.0]).reshape(1, 1, 1, 4)
  out = local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0)
  np.testing.assert_allclose(out[0, 0, 0, 0], 2.0 / (2.0 + 1e-4 / 5 * 5.0) ** 0.75, rtol=1e-6)


CONFIG_STRINGS = (
  [(imagenet_alexnet, a) for a in ('', 'original', 'original,smoke')]
  + [(imagenet_vgg, a) for a in imagenet_vgg.VARIANTS]
  + [(imagenet_vgg, '11_bn,smoke')]
)


@pytest.mark.parametrize(
  'module,arg', CONFIG_STRINGS, ids=[f'{m.__name__}:{a}' for m, a in CONFIG_STRINGS]
)
def test_config_builds_model_with_exact_count(module, arg):
  config = module.get_config(arg)
  kwargs = dict(config.model.to_dict())
  name = kwargs.pop('name')
  model = MODELS[name](num_classes=1000, **kwargs)
  size = config.input.image_size  # the adaptive pool makes the count size-free
  assert count_params(abstract_variables(model, size)['params']) == EXPECTED_PARAMS[name]
  assert config.lr_schedule == 'step' and len(config.lr_boundaries_epochs) >= 2
  assert all(0 < b < config.num_epochs for b in config.lr_boundaries_epochs)


def test_config_rejects_unknown_variant():
  with pytest.raises(ValueError, match='VARIANT in 11, 11_lrn'):
    imagenet_vgg.get_config('17')
  with pytest.raises(ValueError, match='original'):
    imagenet_alexnet.get_config('tiny')
  with pytest.raises(ValueError):
    imagenet_vgg.get_config('16,fast')
