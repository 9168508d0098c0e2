"""The train state, the pure train and eval steps, and their compilation over a mesh."""

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import dynamic_scale as dynamic_scale_lib

from input_pipeline import resident
from models import backward
from train_lib import sharding, system


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly: one pytree, saved whole."""

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array  # raw uint32 key; the step's randomness is fold_in(rng, step)
  # float16 only: the dynamic loss scale (flax's DynamicScale); None otherwise.
  dynamic_scale: Any = None


def create_train_state(
  model: nn.Module, tx: optax.GradientTransformation, config: ml_collections.ConfigDict, input_shape
) -> TrainState:
  """Initializes the model from `config.seed` (call under jit with out_shardings).

  `input_shape` is one model input's (height, width, channels).
  """
  init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  variables = model.init(
    {'params': init_rng, 'dropout': init_rng},
    jnp.zeros((1, *input_shape), model.dtype),
    train=False,
  )
  params = variables['params']
  scale = None
  if model.dtype == jnp.float16:
    # float16 gradients underflow without scaling (bfloat16 has float32's range).
    scale = dynamic_scale_lib.DynamicScale(
      fin_steps=jnp.zeros((), jnp.int32), scale=jnp.asarray(2.0**15, jnp.float32)
    )
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get('batch_stats', {}),
    opt_state=tx.init(params),
    rng=state_rng,
    dynamic_scale=scale,
  )


def model_variables(state: TrainState, params=None) -> dict:
  """The model's variables: `params` (default: the state's), and 'batch_stats' where the
  model has them."""
  params = state.params if params is None else params
  if state.batch_stats:
    return {'params': params, 'batch_stats': state.batch_stats}
  return {'params': params}


def train_step(
  state: TrainState,
  batch,
  *,
  model: nn.Module,
  tx: optax.GradientTransformation,
  task,
  backward_mode: str = 'xla',
):
  """One SGD step on a global batch; returns the new state and summed metrics.

  The task (train_lib/tasks/) makes the inputs and targets, the loss and the metric
  sums; `backward_mode` picks the layers' backward passes (models/backward.py, chosen
  per platform by train_lib/system.py).
  """
  aug_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))
  images, labels = task.train_inputs(batch, aug_rng, model.dtype)

  def loss_fn(params):
    with backward.use(backward_mode):
      logits, new_vars = model.apply(
        model_variables(state, params),
        images,
        train=True,
        mutable=['batch_stats', 'aux_logits'],
        rngs={'dropout': dropout_rng},
      )
    logits = logits.astype(jnp.float32)
    loss = task.loss(logits, jax.tree.leaves(new_vars.get('aux_logits', {})), labels)
    return loss, (logits, new_vars.get('batch_stats', {}))

  if state.dynamic_scale is None:
    (_, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  else:  # float16: the loss is scaled up before and the gradients down after.
    scale, finite, (_, (logits, batch_stats)), grads = state.dynamic_scale.value_and_grad(
      loss_fn, has_aux=True
    )(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = task.train_sums(logits, labels)
  new_state = state.replace(
    step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
  )
  if state.dynamic_scale is not None:
    # An overflowed float16 gradient skips the update (the scale was halved); the step
    # counter still advances, so the data order is unchanged. `where`, not `cond`, so
    # the step stays one straight-line program.
    keep = lambda new, old: jax.tree.map(  # noqa: E731
      lambda n, o: jnp.where(finite, n, o), new, old
    )
    new_state = new_state.replace(
      params=keep(params, state.params),
      opt_state=keep(opt_state, state.opt_state),
      batch_stats=keep(batch_stats, state.batch_stats),
      dynamic_scale=scale,
    )
  return new_state, metrics


def train_steps(
  state: TrainState,
  batches,
  *,
  model: nn.Module,
  tx: optax.GradientTransformation,
  task,
  backward_mode: str = 'xla',
):
  """`train_step` over the leading axis of `batches` in one program; metrics summed.

  The scan is unrolled: as a loop it ran 2x slower than separate calls on XLA:CPU, as
  straight-line code a tiny model ran faster (README, Performance), while compiling
  about as many times longer as it has steps.
  """
  one = functools.partial(train_step, model=model, tx=tx, task=task, backward_mode=backward_mode)
  state, metrics = jax.lax.scan(one, state, batches, unroll=True)
  return state, jax.tree.map(lambda m: m.sum(0), metrics)


def resident_train_step(
  state: TrainState,
  data,
  perm,
  *,
  model: nn.Module,
  tx: optax.GradientTransformation,
  task,
  batch_size: int,
  batch_sharding,
  backward_mode: str = 'xla',
):
  """`train_step` on the batch of step `state.step`, gathered from the training split
  that lives on the devices (`config.input.feed`: input_pipeline/resident.py)."""
  batch = resident.take_batch(data, perm, state.step, batch_size, batch_sharding)
  return train_step(state, batch, model=model, tx=tx, task=task, backward_mode=backward_mode)


def eval_step(state: TrainState, batch, *, model: nn.Module, task):
  """Masked summed metrics of one (padded) eval batch, as the task defines them.

  A batch of several views per example (images N x V x H x W x C: 10-crop testing)
  is scored on the mean of each example's V logits.
  """
  views = batch['image'].shape[1] if batch['image'].ndim == 5 else 0
  if views:
    batch = dict(batch, image=batch['image'].reshape(-1, *batch['image'].shape[2:]))
  images, labels = task.eval_inputs(batch, model.dtype)
  logits = model.apply(model_variables(state), images, train=False)
  if views:
    logits = logits.reshape(-1, views, logits.shape[-1]).mean(1)
  return task.eval_sums(logits.astype(jnp.float32), labels, batch['mask'])


def _compiled(fn, s, in_shardings, out_shardings, donate: bool):
  """`jax.jit` of `fn` with the setup's XLA options for the mesh's platform."""
  return jax.jit(
    fn,
    in_shardings=in_shardings,
    out_shardings=out_shardings,
    donate_argnums=0 if donate else (),
    compiler_options=system.xla_options(s.config, system.mesh_platform(s.mesh)),
  )


def compile_steps(s, feed: str = 'host'):
  """`jax.jit`s the train and eval steps of setup `s` (train_lib/setup.py) over its mesh.

  The train state is donated. With `feed` 'device_resident' the train step takes
  `(state, data, perm)` (replicated) instead of `(state, batch)` (input_pipeline/feeds.py).
  """
  data, rep = sharding.batch_sharding(s.mesh), sharding.replicated(s.mesh)
  mode = system.backward_mode(s.config, system.mesh_platform(s.mesh))
  common = dict(model=s.model, tx=s.tx, task=s.task, backward_mode=mode)
  if feed == 'device_resident':
    fn = functools.partial(
      resident_train_step, batch_size=s.config.batch_size, batch_sharding=data, **common
    )
    p_train = _compiled(fn, s, (s.state_sharding, rep, rep), (s.state_sharding, rep), True)
  else:
    fn = functools.partial(train_step, **common)
    p_train = _compiled(fn, s, (s.state_sharding, data), (s.state_sharding, rep), True)
  fn = functools.partial(eval_step, model=s.model, task=s.task)
  p_eval = _compiled(fn, s, (s.state_sharding, data), rep, False)
  return p_train, p_eval


def compile_multi_train_step(s):
  """`jax.jit` of `train_steps`: `config.steps_per_call` steps per call, state donated.

  For tiny models whose step is shorter than Python's dispatch of it. Its batches are
  stacked: (steps_per_call, global batch, ...), sharded over the second axis.
  """
  stacked = jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec(None, sharding.DATA_AXIS))
  mode = system.backward_mode(s.config, system.mesh_platform(s.mesh))
  fn = functools.partial(train_steps, model=s.model, tx=s.tx, task=s.task, backward_mode=mode)
  return _compiled(
    fn, s, (s.state_sharding, stacked), (s.state_sharding, sharding.replicated(s.mesh)), True
  )
