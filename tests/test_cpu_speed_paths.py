"""The CPU speed paths (issue #15) compute what the plain paths compute.

- models/batch_norm.BatchNorm equals flax's nn.BatchNorm: outputs, running statistics
  and gradients, float32 and bfloat16, training and evaluation.
- Under the 'cpu' backward (models/backward.py) convolutions give JAX's own gradients
  for every kind our families use, and max pooling nn.max_pool's values and gradients.
- train_lib/system: 'auto' on CPU really changes the compiled step (no YNNPACK
  convolution fusions, conditionals for the copies); bad settings are one-line errors.
- The digits job (LeNet-5) logs the same training losses
  on the fast path as with XLA's defaults and XLA's backward, and so does a residual
  BatchNorm net (metrics, parameters, statistics); the fast train step compiles once.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import fast_compile_options, read_metrics

from models import backward, conv, pooling
from models.batch_norm import BatchNorm
from train_lib import setup, sharding, steps, system, train
from train_lib.errors import UserError


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize('train_mode', [True, False])
@pytest.mark.parametrize('shape', [(6, 5, 7, 3), (9, 4)])
def test_batch_norm_equals_flax(dtype, train_mode, shape):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(1.0, 2.0, shape).astype(np.float32)).astype(dtype)
  kw = dict(use_running_average=not train_mode, momentum=0.9, epsilon=1e-5, dtype=dtype)
  ours, theirs = BatchNorm(**kw), nn.BatchNorm(**kw)
  variables = theirs.init(jax.random.PRNGKey(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) == jax.tree.map(
    jnp.shape, variables
  )
  variables = jax.tree.map(lambda v: v + rng.uniform(0.1, 0.5, v.shape), variables)

  def run(module, variables, x):
    y, stats = module.apply(variables, x, mutable=['batch_stats'])
    return jnp.sum(jnp.sin(y.astype(jnp.float32))), (y, stats)

  grad = jax.jit(jax.grad(run, argnums=(1, 2), has_aux=True), static_argnums=0)
  g_ours, (y_ours, s_ours) = grad(ours, variables, x)
  g_theirs, (y_theirs, s_theirs) = grad(theirs, variables, x)
  assert y_ours.dtype == y_theirs.dtype == dtype
  tol = 1e-5 if dtype == jnp.float32 else 1e-2  # bfloat16: its rounding, 2^-8
  np.testing.assert_allclose(
    np.asarray(y_ours, np.float32), np.asarray(y_theirs, np.float32), atol=tol
  )
  for a, b in zip(jax.tree.leaves((s_ours, g_ours)), jax.tree.leaves((s_theirs, g_theirs))):
    np.testing.assert_allclose(
      np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol
    )
  if not train_mode:  # evaluation leaves the running statistics alone
    for a, b in zip(jax.tree.leaves(s_ours), jax.tree.leaves(variables['batch_stats'])):
      np.testing.assert_array_equal(a, b)


CONVS = {
  'strided_explicit': dict(kernel_size=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1))),
  'dilated_same': dict(kernel_size=(3, 3), kernel_dilation=(2, 2), padding='SAME'),
  'grouped_bias_1x1': dict(kernel_size=(1, 1), feature_group_count=2, use_bias=True),
  'grouped_valid_5x5': dict(kernel_size=(5, 5), padding='VALID', feature_group_count=2),
}


@pytest.mark.parametrize('name', sorted(CONVS))
def test_copied_backward_gives_jax_gradients(name):
  layer = conv.Conv(6, **{'use_bias': False, **CONVS[name]})
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 11, 9, 4))
  variables = layer.init(jax.random.PRNGKey(2), x)

  def loss(variables, x):
    return jnp.sum(jnp.tanh(layer.apply(variables, jax.nn.relu(x) * 1.5)) ** 2)

  plain = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x)

  def copied_grad(variables, x):
    with conv.backward.use('cpu'):
      return jax.grad(loss, argnums=(0, 1))(variables, x)

  copied = jax.jit(copied_grad)
  assert 'conditional' in copied.lower(variables, x).compile().as_text()
  for a, b in zip(jax.tree.leaves(copied(variables, x)), jax.tree.leaves(plain)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='not one of'):
    with backward.use('fast'):
      pass


def test_bfloat16_note_only_on_cpus_without_bf16_units(monkeypatch):
  config = _config()
  config.half_precision = True
  monkeypatch.setattr(system, 'cpu_has_bf16_units', lambda: False)
  assert 'no bfloat16 units' in system.notes(config, 'cpu')[0]
  assert system.notes(config, 'gpu') == []
  for has_units in (True, None):
    monkeypatch.setattr(system, 'cpu_has_bf16_units', lambda: has_units)  # noqa: B023
    assert system.notes(config, 'cpu') == []
  config.half_precision = False
  monkeypatch.setattr(system, 'cpu_has_bf16_units', lambda: False)
  assert system.notes(config, 'cpu') == []


@pytest.mark.parametrize(
  'window,stride,padding,ceil_mode',
  [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 0, True), (3, 1, 1, True)],
)
def test_cpu_max_pool_equals_xla_max_pool(window, stride, padding, ceil_mode):
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 9, 11, 3))
  g = jax.random.normal(
    jax.random.PRNGKey(4), pooling.max_pool(x, window, stride, padding, ceil_mode).shape
  )

  @functools.partial(jax.jit, static_argnums=1)
  def value_and_grad(x, mode):
    with backward.use(mode):
      y, vjp = jax.vjp(lambda x: pooling.max_pool(x, window, stride, padding, ceil_mode), x)
    return y, vjp(g)[0]

  for ours, xla in zip(value_and_grad(x, 'cpu'), value_and_grad(x, 'xla')):
    np.testing.assert_array_equal(ours, xla)


def _config(**system_settings):
  from configs import digits_lenet5

  config = digits_lenet5.get_config()
  config.batch_size = 16
  for key, value in system_settings.items():
    config.system[key] = value
  return config


class TinyResidualNet(nn.Module):
  """conv-BN-ReLU-conv-BN plus the input, ReLU, 2x2 max pool, dense: each fast path."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = conv.Conv(8, (3, 3), use_bias=False, dtype=self.dtype)(x.astype(self.dtype))
    y = nn.relu(BatchNorm(use_running_average=not train, dtype=self.dtype)(x))
    y = conv.Conv(8, (3, 3), use_bias=False, dtype=self.dtype)(y)
    y = BatchNorm(use_running_average=not train, dtype=self.dtype)(y)
    x = pooling.max_pool(nn.relu(x + y), 2, 2)
    return nn.Dense(10, dtype=self.dtype)(x.reshape(x.shape[0], -1)).astype(jnp.float32)


def test_auto_changes_the_compiled_cpu_step():
  """What 'auto' compiles on CPU: no YNNPACK fusions, conditionals for the copies.

  (That the train step compiles once on this path: tests/test_bench.py.)
  """
  config = _config()
  model = TinyResidualNet()
  x = jnp.zeros((4, 8, 8, 3))
  variables = model.init(jax.random.PRNGKey(0), x, train=False)

  def grads(variables, x):
    def loss(params):
      y, _ = model.apply({**variables, 'params': params}, x, train=True, mutable=['batch_stats'])
      return jnp.sum(y**2)

    with backward.use(system.backward_mode(config, 'cpu')):
      return jax.grad(loss)(variables['params'])

  step = jax.jit(grads, compiler_options=system.xla_options(config, 'cpu'))
  hlo = step.lower(variables, x).compile().as_text()
  assert '__ynn_fusion' not in hlo and 'conditional' in hlo


def test_system_settings_and_their_errors(monkeypatch):
  config = _config()
  auto = system.supported_xla_options(system.AUTO_XLA_OPTIONS['cpu'], 'cpu')
  assert system.xla_options(config, 'cpu') == auto
  # Parsing, whatever options the running jaxlib knows (its refusals: test_xla_options).
  monkeypatch.setattr(system, 'option_refusal', lambda *_: None)
  assert system.xla_options(config, 'gpu') == {}
  assert system.backward_mode(config, 'cpu') == 'cpu'
  assert system.backward_mode(config, 'tpu') == 'xla'
  config.system.xla_options = '--xla_cpu_enable_fast_math=true, xla_cpu_max_isa=AVX2'
  assert system.xla_options(config, 'cpu') == {
    'xla_cpu_enable_fast_math': True,
    'xla_cpu_max_isa': 'AVX2',
  }
  config.system.xla_options = 'default'
  assert system.xla_options(config, 'cpu') == {}
  config.system.xla_options = 'fast'
  with pytest.raises(UserError, match="'fast' is not name=value"):
    system.xla_options(config, 'cpu')
  config.system.backward = 'fast'
  with pytest.raises(UserError, match="backward 'fast' is not one of auto, xla, cpu"):
    system.backward_mode(config, 'cpu')


def test_fast_path_logs_the_default_paths_losses(digits_config, tmp_path):
  """Four steps of the digits job (LeNet-5) on 8 devices log the same training losses."""
  config = digits_config
  config.num_train_steps = 4
  config.log_every_steps = 1
  config.eval_every_steps = config.checkpoint_every_steps = 4
  losses = {}
  for path, settings in (('fast', ('auto', 'auto')), ('default', ('default', 'xla'))):
    config.system.xla_options, config.system.backward = settings
    train.train_and_evaluate(config, str(tmp_path / path))
    losses[path] = [
      row['loss'] for row in read_metrics(str(tmp_path / path)) if row['split'] == 'train'
    ]
  assert len(losses['fast']) == 4
  np.testing.assert_allclose(losses['fast'], losses['default'], rtol=2e-5)


def test_fast_path_trains_a_batch_norm_net_like_the_default_path():
  """Three steps of a residual BatchNorm net on 8 devices: the same metrics and state."""
  from configs import default

  config = default.get_config()
  config.input.image_size, config.input.channels = 8, 3
  config.input.crop_padding, config.input.random_flip = 1, True
  model, tx = TinyResidualNet(), optax.sgd(0.1, momentum=0.9)
  mesh = sharding.create_mesh()
  rng = np.random.default_rng(0)
  batch = jax.device_put(
    {
      'image': rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8),
      'label': rng.integers(0, 10, (16,)).astype(np.int32),
    },
    sharding.batch_sharding(mesh),
  )
  results = {}
  for path, settings in (('fast', ('auto', 'auto')), ('default', ('default', 'xla'))):
    config.system.xla_options, config.system.backward = settings
    s = setup.create(config, model=model, tx=tx)
    train_step, _ = steps.compile_steps(s)
    state, results[path] = s.state, []
    for _ in range(3):
      state, metrics = train_step(state, batch)
      results[path].append(jax.device_get(metrics))
    results[path].append(jax.device_get((state.params, state.batch_stats)))
  for fast, default_path in zip(
    jax.tree.leaves(results['fast']), jax.tree.leaves(results['default'])
  ):
    np.testing.assert_allclose(fast, default_path, rtol=2e-5, atol=1e-6)


# Families whose pooling must follow the backward mode: tiny instances, each pooling
# the way its architecture does (floor 2x2/2, the valid U-Net's crops, ceil mode).
POOLING_FAMILIES = {
  'vgg11': (dict(fc_features=4), 32),
  'unet': (dict(base_width=2, depth=1), 18),
  'unet_same': (dict(base_width=2, depth=2), 10),
  'u2netp': ({}, 7),
}


def _value_and_grad(model, mode, variables, x):
  def loss(params, x):
    y, _ = model.apply(
      {**variables, 'params': params},
      x,
      train=True,
      rngs={'dropout': jax.random.PRNGKey(7)},
      mutable=['batch_stats', 'aux_logits'],
    )
    return jnp.sum(jnp.sin(y)), y

  with backward.use(mode):
    return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(variables['params'], x)


@pytest.mark.parametrize('name', sorted(POOLING_FAMILIES))
def test_families_pool_as_the_backward_mode_says(name):
  """VGG, U-Net and U^2-Net pool through models.pooling.max_pool: under 'cpu' no XLA
  max reduce-window is left in their training step, and values and gradients equal
  those under 'xla' (for U^2-Net, of one ceil-mode RSU-4 block: the whole net takes
  minutes to compile twice)."""
  from models import registry, u2net

  kwargs, size = POOLING_FAMILIES[name]
  model = registry.MODELS[name](num_classes=2, **kwargs)
  x = jax.random.normal(jax.random.PRNGKey(5), (2, size, size, 3))
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(6), x, train=False))
  for mode, pools_in_xla in (('cpu', False), ('xla', True)):
    jaxpr = str(jax.make_jaxpr(functools.partial(_value_and_grad, model, mode))(variables, x))
    assert ('reduce_window_max' in jaxpr) == pools_in_xla, mode

  if name.startswith('u2net'):
    model = u2net.RSU(u2net.Stage(4, False, 2, 4))
  options = fast_compile_options()
  init = jax.jit(lambda: model.init(jax.random.PRNGKey(6), x, train=False))
  variables = init.lower().compile(compiler_options=options)()
  results = [
    jax.jit(functools.partial(_value_and_grad, model, mode))
    .lower(variables, x)
    .compile(compiler_options=options)(variables, x)
    for mode in ('cpu', 'xla')
  ]
  # One scale for all: some gradients are zero up to rounding (a bias before BatchNorm).
  scale = max(np.abs(np.asarray(leaf)).max() for leaf in jax.tree.leaves(results[1]))
  for ours, xla in zip(*(jax.tree.leaves(r) for r in results)):
    np.testing.assert_allclose(ours, xla, rtol=1e-4, atol=1e-5 * scale)
