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

from input_pipeline import preprocess, resident
from models import backward
from train_lib import sharding, system, tasks
from train_lib.errors import UserError

HALF_PRECISION_DTYPES = {'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


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


def compute_dtype(config: ml_collections.ConfigDict):
  """The dtype of activations and arithmetic: float32, or the half precision asked for.

  Parameters, optimizer state and BatchNorm statistics stay float32 whatever this is.
  """
  if not config.half_precision:
    return jnp.float32
  name = config.half_precision_dtype
  if name not in HALF_PRECISION_DTYPES:
    raise UserError(
      f"unknown half_precision_dtype '{name}'; valid: "
      f'{", ".join(HALF_PRECISION_DTYPES)} '
      '(set --config.half_precision_dtype)'
    )
  return HALF_PRECISION_DTYPES[name]


def create_train_state(
  model: nn.Module, tx: optax.GradientTransformation, config: ml_collections.ConfigDict, image_shape
) -> TrainState:
  """Initializes the model from `config.seed` (call under jit with out_shardings)."""
  init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  shape = (1, *preprocess.model_input_shape(config.input, image_shape))
  variables = model.init(
    {'params': init_rng, 'dropout': init_rng}, jnp.zeros(shape, model.dtype), train=False
  )
  params = variables['params']
  scale = None
  if compute_dtype(config) == jnp.float16:
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


def _variables(state: TrainState, params) -> dict:
  if state.batch_stats:
    return {'params': params, 'batch_stats': state.batch_stats}
  return {'params': params}


def train_step(
  state: TrainState,
  batch,
  *,
  model: nn.Module,
  tx: optax.GradientTransformation,
  config: ml_collections.ConfigDict,
  backward_mode: str = 'xla',
):
  """One SGD step on a global batch; returns the new state and summed metrics.

  The task (`config.task`, train_lib/tasks/) makes the inputs and targets, the loss
  and the metric sums; `backward_mode` picks the layers' backward passes
  (models/backward.py, chosen per platform by train_lib/system.py).
  """
  task = tasks.get_task(config)
  aug_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))
  images, labels = task.train_inputs(batch, aug_rng, model.dtype)

  def loss_fn(params):
    with backward.use(backward_mode):
      logits, new_vars = model.apply(
        _variables(state, params),
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
  config: ml_collections.ConfigDict,
  backward_mode: str = 'xla',
):
  """`train_step` over the leading axis of `batches` in one program; metrics summed.

  The scan is unrolled: as a loop it ran 2x slower than separate calls on XLA:CPU, as
  straight-line code a tiny model ran faster (README, Performance), while compiling
  about as many times longer as it has steps.
  """
  one = functools.partial(
    train_step, model=model, tx=tx, config=config, backward_mode=backward_mode
  )
  state, metrics = jax.lax.scan(one, state, batches, unroll=True)
  return state, jax.tree.map(lambda m: m.sum(0), metrics)


def resident_train_step(
  state: TrainState,
  data,
  perm,
  *,
  model: nn.Module,
  tx: optax.GradientTransformation,
  config: ml_collections.ConfigDict,
  batch_sharding,
  backward_mode: str = 'xla',
):
  """`train_step` on the batch of step `state.step`, gathered from the training split
  that lives on the devices (`config.input.feed`: input_pipeline/resident.py)."""
  batch = resident.take_batch(data, perm, state.step, config.batch_size, batch_sharding)
  return train_step(state, batch, model=model, tx=tx, config=config, backward_mode=backward_mode)


def eval_step(state: TrainState, batch, *, model: nn.Module, config: ml_collections.ConfigDict):
  """Masked summed metrics of one (padded) eval batch, as the task defines them.

  A batch of several views per example (images N x V x H x W x C: 10-crop testing)
  is scored on the mean of each example's V logits.
  """
  task = tasks.get_task(config)
  views = batch['image'].shape[1] if batch['image'].ndim == 5 else 0
  if views:
    batch = dict(batch, image=batch['image'].reshape(-1, *batch['image'].shape[2:]))
  images, labels = task.eval_inputs(batch, model.dtype)
  logits = model.apply(_variables(state, state.params), images, train=False)
  if views:
    logits = logits.reshape(-1, views, logits.shape[-1]).mean(1)
  return task.eval_sums(logits.astype(jnp.float32), labels, batch['mask'])


def compile_steps(model, tx, config, mesh, state_sharding, feed: str = 'host'):
  """`jax.jit`s both steps with the mesh's shardings; the train state is donated.

  The model computes in `compute_dtype(config)` whatever dtype it was built with
  (the registry's `half_precision` switch knows only bfloat16). With `feed`
  'device_resident' the train step takes `(state, data, perm)` (replicated) instead of
  `(state, batch)` (input_pipeline/feeds.py).
  """
  if config.steps_per_call != 1:
    raise UserError(
      f'steps_per_call={config.steps_per_call}: only --mode=bench runs '
      'several steps per call so far; set --config.steps_per_call=1'
    )
  model = model.clone(dtype=compute_dtype(config))
  data = sharding.batch_sharding(mesh)
  rep = sharding.replicated(mesh)
  platform = system.mesh_platform(mesh)
  options = system.xla_options(config, platform)
  mode = system.backward_mode(config, platform)
  if feed == 'device_resident':
    p_train = jax.jit(
      functools.partial(
        resident_train_step,
        model=model,
        tx=tx,
        config=config,
        batch_sharding=data,
        backward_mode=mode,
      ),
      in_shardings=(state_sharding, rep, rep),
      out_shardings=(state_sharding, rep),
      donate_argnums=0,
      compiler_options=options,
    )
  else:
    p_train = jax.jit(
      functools.partial(train_step, model=model, tx=tx, config=config, backward_mode=mode),
      in_shardings=(state_sharding, data),
      out_shardings=(state_sharding, rep),
      donate_argnums=0,
      compiler_options=options,
    )
  p_eval = jax.jit(
    functools.partial(eval_step, model=model, config=config),
    in_shardings=(state_sharding, data),
    out_shardings=rep,
    compiler_options=options,
  )
  return p_train, p_eval


def compile_multi_train_step(model, tx, config, mesh, state_sharding):
  """`jax.jit` of `train_steps`: `config.steps_per_call` steps per call, state donated.

  For tiny models whose step is shorter than Python's dispatch of it. Its batches are
  stacked: (steps_per_call, global batch, ...), sharded over the second axis.
  """
  if config.steps_per_call < 1:
    raise UserError(f'steps_per_call={config.steps_per_call} must be >= 1')
  model = model.clone(dtype=compute_dtype(config))
  stacked = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, sharding.DATA_AXIS))
  platform = system.mesh_platform(mesh)
  return jax.jit(
    functools.partial(
      train_steps,
      model=model,
      tx=tx,
      config=config,
      backward_mode=system.backward_mode(config, platform),
    ),
    in_shardings=(state_sharding, stacked),
    out_shardings=(state_sharding, sharding.replicated(mesh)),
    donate_argnums=0,
    compiler_options=system.xla_options(config, platform),
  )
