"""LeNet-5 against the paper: parameter counts, C3's connection table, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_compile_options

from models import lenet


def _params(model):
  variables = jax.eval_shape(
    lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 1)), train=False)
  )
  return variables['params']


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_paper_parameter_counts():
  params = _params(lenet.LeNet5())
  per_layer = {k: _count(v) for k, v in params.items()}
  # LeCun et al. 1998, section II.B: the layer counts and 60,000 for C1..F6.
  assert per_layer == {
    'C1': 156,
    'S2': 12,
    'C3': 1516,
    'S4': 32,
    'C5': 48120,
    'F6': 10164,
    'output': 840,
  }
  assert sum(v for k, v in per_layer.items() if k != 'output') == 60_000
  assert _count(params) == 60_840


@pytest.mark.parametrize('name,count', [('lenet5_softmax', 60_850), ('lenet5_modern', 61_706)])
def test_variant_parameter_counts(name, count):
  assert _count(_params(lenet.MODELS[name]())) == count


def test_c3_connection_table():
  assert sum(len(ins) for ins in lenet.C3_TABLE) == 60
  model = lenet.PartialConv(16, lenet.C3_TABLE)
  x = jnp.zeros((1, 14, 14, 6))
  variables = model.init(jax.random.PRNGKey(0), x)
  apply = jax.jit(model.apply)
  # Input map j only reaches output maps whose row of Table I lists j.
  for j in range(6):
    xj = x.at[..., j].set(1.0)
    y = apply(variables, xj) - apply(variables, x)
    reached = {o for o in range(16) if np.abs(np.asarray(y[..., o])).max() > 0}
    assert reached == {o for o, ins in enumerate(lenet.C3_TABLE) if j in ins}


# Compiling with less effort keeps the test fast; the numerics are not in question here.
FAST_COMPILE = fast_compile_options()


@pytest.mark.parametrize('name', sorted(lenet.MODELS))
def test_forward_and_gradients(name):
  model = lenet.MODELS[name](num_classes=10)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 32, 32, 1))
  variables = model.init(jax.random.PRNGKey(0), x, train=False)

  def loss(params):
    logits = model.apply({'params': params}, x, train=True)
    return jnp.sum(logits**2), logits

  grad_fn = jax.jit(jax.grad(loss, has_aux=True)).lower(variables['params']).compile(FAST_COMPILE)
  grads, logits = grad_fn(variables['params'])
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32
  fixed = grads.pop('output') if name == 'lenet5' else None
  for g in jax.tree.leaves(grads):
    assert np.all(np.isfinite(g)) and np.any(g != 0)
  if fixed is not None:  # the paper keeps the RBF prototypes fixed
    assert not np.any(fixed['prototypes'])


def test_scaled_tanh():
  # f(a) = 1.7159 tanh(2a/3): f(1) = 1 approximately, by the paper's design.
  np.testing.assert_allclose(lenet.scaled_tanh(1.0), 1.0, atol=2e-4)
