"""Mixed precision: bfloat16 trains as well as float32; float32 parameters, optimizer
state and BatchNorm statistics; float16 with dynamic loss scaling; one compilation."""

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from train_lib import setup, sharding, steps, train
from train_lib.errors import UserError
from train_lib.modes import bench


def test_bfloat16_reaches_the_float32_accuracy_band(digits_config, tmp_path):
  """LeNet-5 on the digits, 44 steps of 64 (2 epochs): both >= 90%, within 3 points."""
  config = digits_config
  config.num_train_steps = 44
  config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 44
  single = train.train_and_evaluate(config, str(tmp_path / 'float32'))
  config.half_precision = True
  half = train.train_and_evaluate(config, str(tmp_path / 'bfloat16'))
  assert single['accuracy'] >= 0.9 and half['accuracy'] >= 0.9, (single, half)
  assert abs(single['accuracy'] - half['accuracy']) <= 0.03, (single, half)


class TinyBatchNormNet(nn.Module):
  """Conv-BN-ReLU, global average pooling, dense: the layers whose dtypes matter."""

  num_classes: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.Conv(
      8, (3, 3), use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, name='conv1'
    )(x.astype(self.dtype))
    x = nn.BatchNorm(
      use_running_average=not train,
      momentum=0.9,
      epsilon=1e-5,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='bn1',
    )(x)
    x = nn.relu(x).mean(axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype, name='fc')(
      x
    ).astype(jnp.float32)


def _setup(half_dtype: str):
  """A compiled train step of TinyBatchNormNet on 8 devices, and its state and batch."""
  config = default.get_config()
  config.input.image_size = 8
  config.input.channels = 3
  config.input.crop_padding = 1
  config.input.random_flip = True
  config.half_precision = True
  config.half_precision_dtype = half_dtype
  model = TinyBatchNormNet(num_classes=10, dtype=setup.compute_dtype(config))
  s = setup.create(config, model=model, tx=optax.sgd(0.1, momentum=0.9))
  state, rep, mesh = s.state, s.state_sharding, s.mesh
  train_step, _ = steps.compile_steps(s)
  rng = np.random.default_rng(0)
  batch = {
    'image': rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8),
    'label': rng.integers(0, 10, (16,)).astype(np.int32),
  }
  batch = jax.device_put(batch, sharding.batch_sharding(mesh))
  return train_step, state, batch, rep


def _float_dtypes(tree) -> set[str]:
  return {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}


@pytest.mark.parametrize('half_dtype', ['bfloat16', 'float16'])
def test_half_precision_keeps_float32_state_and_compiles_once(half_dtype):
  train_step, state, batch, _ = _setup(half_dtype)
  hlo = train_step.lower(state, batch).as_text()
  short = {'bfloat16': 'bf16', 'float16': 'f16'}[half_dtype]
  convolutions = [line for line in hlo.splitlines() if 'convolution' in line]
  assert convolutions and all(re.search(rf'x{short}>', line) for line in convolutions)
  initial_stats = jax.device_get(state.batch_stats)
  with bench.CompileCounter() as counter:
    state, metrics = train_step(state, batch)
    first = counter.compiles
    for _ in range(3):
      state, metrics = train_step(state, batch)
  assert first == 1 and counter.compiles == 1  # none after the first step
  assert train_step._cache_size() == 1
  assert np.isfinite(float(metrics['loss']))
  assert _float_dtypes(state.params) == {'float32'}
  assert _float_dtypes(state.opt_state) == {'float32'}
  assert _float_dtypes(state.batch_stats) == {'float32'}
  moved = jax.tree.map(
    lambda a, b: not np.allclose(a, b), initial_stats, jax.device_get(state.batch_stats)
  )
  assert all(jax.tree.leaves(moved))  # the statistics were updated
  if half_dtype == 'float16':
    assert _float_dtypes(state.dynamic_scale) == {'float32'}
  else:
    assert state.dynamic_scale is None


def test_float16_overflow_skips_the_update_and_halves_the_scale():
  train_step, state, batch, rep = _setup('float16')
  # A loss scale this large overflows float16's range (65504) in the backward pass.
  huge = state.dynamic_scale.replace(scale=jnp.asarray(3e38, jnp.float32))
  state = jax.device_put(state.replace(dynamic_scale=huge), rep)
  before = jax.device_get((state.params, state.batch_stats, state.opt_state))
  state, _ = train_step(state, batch)
  after = jax.device_get((state.params, state.batch_stats, state.opt_state))
  jax.tree.map(np.testing.assert_array_equal, after, before)
  assert int(state.step) == 1
  assert float(state.dynamic_scale.scale) == pytest.approx(1.5e38)
  assert int(state.dynamic_scale.fin_steps) == 0
  # A sane scale trains: parameters move and the finite-step counter runs.
  ok = state.dynamic_scale.replace(scale=jnp.asarray(2.0**15, jnp.float32))
  state = jax.device_put(state.replace(dynamic_scale=ok), rep)
  state, _ = train_step(state, batch)
  assert not np.allclose(jax.device_get(state.params['fc']['kernel']), before[0]['fc']['kernel'])
  assert int(state.dynamic_scale.fin_steps) == 1


def test_unknown_half_precision_dtype_is_a_user_error():
  config = default.get_config()
  config.half_precision = True
  config.half_precision_dtype = 'float8'
  with pytest.raises(UserError, match='half_precision_dtype'):
    setup.compute_dtype(config)
