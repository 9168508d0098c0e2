"""The CPU speed paths (issue #15) compute what the plain paths compute.

- models/batch_norm.BatchNorm equals flax's nn.BatchNorm: outputs, running statistics
  and gradients, float32 and bfloat16, training and evaluation.
- Under the 'cpu' backward (models/backward.py) convolutions give JAX's own gradients
  for every kind our families use, and max pooling nn.max_pool's values and gradients.
- train_lib/system: 'auto' on CPU really changes the compiled step (no YNNPACK
  convolution fusions, conditionals for the copies); bad settings are one-line errors.
- The digits jobs (LeNet-5, and a ResNet with BatchNorm) log the same training losses
  on the fast path as with XLA's defaults and XLA's backward; the fast train step
  compiles once.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import read_metrics

from models import backward, conv, pooling
from models.batch_norm import BatchNorm
from train_lib import bench, system, train
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
      jnp.shape, variables)
  variables = jax.tree.map(lambda v: v + rng.uniform(0.1, 0.5, v.shape), variables)

  def run(module, variables, x):
    y, stats = module.apply(variables, x, mutable=['batch_stats'])
    return jnp.sum(jnp.sin(y.astype(jnp.float32))), (y, stats)

  grad = jax.grad(run, argnums=(1, 2), has_aux=True)
  g_ours, (y_ours, s_ours) = grad(ours, variables, x)
  g_theirs, (y_theirs, s_theirs) = grad(theirs, variables, x)
  assert y_ours.dtype == y_theirs.dtype == dtype
  tol = 1e-5 if dtype == jnp.float32 else 1e-2  # bfloat16: its rounding, 2^-8
  np.testing.assert_allclose(np.asarray(y_ours, np.float32),
                             np.asarray(y_theirs, np.float32), atol=tol)
  for a, b in zip(jax.tree.leaves((s_ours, g_ours)), jax.tree.leaves((s_theirs, g_theirs))):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               rtol=tol, atol=tol)
  if not train_mode:  # evaluation leaves the running statistics alone
    assert jax.tree.leaves(s_ours) == jax.tree.leaves(variables['batch_stats'])


CONVS = {
    'same_3x3': dict(kernel_size=(3, 3), padding='SAME'),
    'strided_explicit': dict(kernel_size=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1))),
    'dilated': dict(kernel_size=(3, 3), kernel_dilation=(2, 2), padding=2),
    'grouped_bias': dict(kernel_size=(5, 5), padding='VALID', feature_group_count=2,
                         use_bias=True),
    'pointwise': dict(kernel_size=(1, 1)),
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


@pytest.mark.parametrize('window,stride,padding,ceil_mode', [
    (2, 2, 0, False), (3, 2, 1, False), (3, 2, 0, True), (3, 1, 1, True)])
def test_cpu_max_pool_equals_xla_max_pool(window, stride, padding, ceil_mode):
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 9, 11, 3))
  g = jax.random.normal(jax.random.PRNGKey(4), pooling.max_pool(
      x, window, stride, padding, ceil_mode).shape)

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


def test_auto_changes_the_compiled_cpu_step_which_compiles_once():
  fast = bench.prepare(_config(), jax.devices()[:1])
  hlo = fast.train_step.lower(fast.state, fast.batch).compile().as_text()
  assert '__ynn_fusion' not in hlo and 'conditional' in hlo
  state = fast.state
  with bench.CompileCounter() as counter:
    for _ in range(3):
      state, _ = fast.train_step(state, fast.batch)
    jax.block_until_ready(state)
  assert counter.compiles + counter.cache_hits == 0
  plain = bench.prepare(_config(xla_options='default', backward='xla'),
                        jax.devices()[:1])
  assert 'stablehlo.case' not in plain.train_step.lower(plain.state, plain.batch).as_text()


def test_system_settings_and_their_errors():
  config = _config()
  assert system.xla_options(config, 'cpu') == {'xla_cpu_experimental_ynn_fusion_type': ''}
  assert system.xla_options(config, 'gpu') == {}
  assert system.backward_mode(config, 'cpu') == 'cpu'
  assert system.backward_mode(config, 'tpu') == 'xla'
  config.system.xla_options = '--xla_cpu_enable_fast_math=true, xla_cpu_max_isa=AVX2,x=3'
  assert system.xla_options(config, 'cpu') == {
      'xla_cpu_enable_fast_math': True, 'xla_cpu_max_isa': 'AVX2', 'x': 3}
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
    losses[path] = [row['loss'] for row in read_metrics(str(tmp_path / path))
                    if row['split'] == 'train']
  assert len(losses['fast']) == 4
  np.testing.assert_allclose(losses['fast'], losses['default'], rtol=2e-5)


def test_fast_path_trains_a_batch_norm_resnet_like_the_default_path():
  """The digits ResNet-20 (BatchNorm, option-A shortcuts), three steps on one batch."""
  from configs import digits_resnet
  metrics = {}
  for path, settings in (('fast', ('auto', 'auto')), ('default', ('default', 'xla'))):
    config = digits_resnet.get_config('20')
    config.model.width = 4
    config.batch_size = 32
    config.system.xla_options, config.system.backward = settings
    prepared = bench.prepare(config, jax.devices()[:1])
    state, metrics[path] = prepared.state, []
    for _ in range(3):
      state, step_metrics = prepared.train_step(state, prepared.batch)
      metrics[path].append(jax.device_get(step_metrics))
  for fast, default in zip(metrics['fast'], metrics['default']):
    for key in fast:
      np.testing.assert_allclose(fast[key], default[key], rtol=2e-5, err_msg=key)
