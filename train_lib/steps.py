"""The train state, the pure train and eval steps, and their compilation over a mesh."""

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from input_pipeline import preprocess
from train_lib import sharding


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly: one pytree, saved whole."""

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array  # raw uint32 key; the step's randomness is fold_in(rng, step)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation,
                       config: ml_collections.ConfigDict, image_shape) -> TrainState:
  """Initializes the model from `config.seed` (call under jit with out_shardings)."""
  init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  shape = (1, *preprocess.model_input_shape(config.input, image_shape))
  variables = model.init({'params': init_rng, 'dropout': init_rng},
                         jnp.zeros(shape, model.dtype), train=False)
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=tx.init(params), rng=state_rng)


def _variables(state: TrainState, params) -> dict:
  if state.batch_stats:
    return {'params': params, 'batch_stats': state.batch_stats}
  return {'params': params}


def _classification_sums(logits, labels, mask):
  """Masked sums: summed loss, correct predictions, number of examples."""
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return {'loss': jnp.sum(loss * mask), 'correct': jnp.sum(correct * mask),
          'count': jnp.sum(mask)}


def train_step(state: TrainState, batch, *, model: nn.Module,
               tx: optax.GradientTransformation, config: ml_collections.ConfigDict):
  """One SGD step on a global batch; returns the new state and summed metrics."""
  aug_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))
  images = preprocess.normalize(batch['image'], config.input, model.dtype)
  images = preprocess.augment(images, aug_rng, config.input)
  labels = batch['label']

  def loss_fn(params):
    logits, new_vars = model.apply(
        _variables(state, params), images, train=True,
        mutable=['batch_stats', 'aux_logits'], rngs={'dropout': dropout_rng})
    logits = logits.astype(jnp.float32)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    for aux in jax.tree.leaves(new_vars.get('aux_logits', {})):
      loss += config.aux_loss_weight * optax.softmax_cross_entropy_with_integer_labels(
          aux.astype(jnp.float32), labels).mean()
    return loss, (logits, new_vars.get('batch_stats', {}))

  (_, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = _classification_sums(logits, labels, jnp.ones_like(labels, jnp.float32))
  new_state = state.replace(step=state.step + 1, params=params,
                            batch_stats=batch_stats, opt_state=opt_state)
  return new_state, metrics


def eval_step(state: TrainState, batch, *, model: nn.Module,
              config: ml_collections.ConfigDict):
  """Masked summed metrics of one (padded) eval batch."""
  images = preprocess.normalize(batch['image'], config.input, model.dtype)
  logits = model.apply(_variables(state, state.params), images, train=False)
  return _classification_sums(logits.astype(jnp.float32), batch['label'], batch['mask'])


def compile_steps(model, tx, config, mesh, state_sharding):
  """`jax.jit`s both steps with the mesh's shardings; the train state is donated."""
  data = sharding.batch_sharding(mesh)
  rep = sharding.replicated(mesh)
  p_train = jax.jit(
      functools.partial(train_step, model=model, tx=tx, config=config),
      in_shardings=(state_sharding, data), out_shardings=(state_sharding, rep),
      donate_argnums=0)
  p_eval = jax.jit(functools.partial(eval_step, model=model, config=config),
                   in_shardings=(state_sharding, data), out_shardings=rep)
  return p_train, p_eval
