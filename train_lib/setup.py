"""One setup for every mode: mesh, model, optimizer, train state and shardings.

`create` builds them from a config; `restore` resolves a checkpoint of a workdir
('latest', 'best' or a step) and restores it into the setup's state. train, eval,
bench, convert, predict and inspect all start here, so a model or optimizer option
works the same in each of them.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from input_pipeline import preprocess
from models import registry
from train_lib import checkpoint, optim, sharding, steps, tasks
from train_lib.errors import UserError

HALF_PRECISION_DTYPES = {'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def compute_dtype(config: ml_collections.ConfigDict):
  """The dtype of activations and arithmetic: float32, or the half precision asked for.

  Parameters, optimizer state and BatchNorm statistics stay float32 whatever this is.
  """
  if not config.half_precision:
    return jnp.float32
  name = config.half_precision_dtype
  if name not in HALF_PRECISION_DTYPES:
    raise UserError(
      f"unknown half_precision_dtype '{name}'; valid: {', '.join(HALF_PRECISION_DTYPES)} "
      '(set --config.half_precision_dtype)'
    )
  return HALF_PRECISION_DTYPES[name]


def create_model(config: ml_collections.ConfigDict, dtype=None):
  """The config's model computing in `dtype` (default: `compute_dtype(config)`)."""
  try:
    return registry.create_model(
      config.model,
      num_classes=config.dataset.num_classes,
      dtype=compute_dtype(config) if dtype is None else dtype,
    )
  except (ValueError, TypeError) as e:
    raise UserError(
      f'model {config.model.name!r}: {e} (check the --config.model.* fields)'
    ) from None


@dataclasses.dataclass
class Setup:
  """What a mode works with; `state` is concrete, or abstract (shapes with shardings)."""

  config: ml_collections.ConfigDict
  mesh: jax.sharding.Mesh
  task: Any  # tasks.get_task(config)
  model: Any  # flax Module, computing in compute_dtype(config)
  schedule: optim.Schedule
  tx: optax.GradientTransformation
  image_shape: tuple[int, ...]  # of one model input (H, W, C)
  state: steps.TrainState
  state_sharding: Any  # a pytree of NamedShardings like the state

  def init_state(self) -> steps.TrainState:
    """A fresh initial state (traceable: call under jit with `state_sharding`)."""
    return steps.create_train_state(self.model, self.tx, self.config, self.image_shape)

  def abstract_state(self) -> steps.TrainState:
    """The state's shapes and dtypes with the shardings it lives in (for restoring)."""
    return jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      self.state,
      self.state_sharding,
    )


def create(
  config: ml_collections.ConfigDict,
  *,
  devices=None,
  task=None,
  model=None,
  tx=None,
  steps_per_epoch: int = 1,
  stored_image_shape=None,
  initialize: bool = True,
) -> Setup:
  """Builds the mesh, task, model, schedule, optimizer and (replicated) train state.

  Args:
    config: the validated experiment config.
    devices: the devices of the mesh (default: all).
    task: the config's task, where the caller has it already (else made here).
    model: a module built elsewhere (a test's), instead of the config's.
    tx: an optimizer built elsewhere, instead of the config's.
    steps_per_epoch: training batches per epoch, for the schedule (its values don't
      change the optimizer state's structure: modes that only restore pass 1).
    stored_image_shape: the dataset's image shape, where `config.input` does not fix
      the model's input size.
    initialize: compute the initial state (False: only its shapes, e.g. to restore).
  """
  mesh = sharding.create_mesh(devices)
  task = task or tasks.get_task(config)
  model = create_model(config) if model is None else model
  schedule = optim.resolve_schedule(config, steps_per_epoch)
  tx = optim.create_optimizer(config, schedule) if tx is None else tx
  image_shape = tuple(preprocess.model_input_shape(config.input, stored_image_shape))
  s = Setup(config, mesh, task, model, schedule, tx, image_shape, None, None)
  s.state = jax.eval_shape(s.init_state)
  rep = sharding.replicated(mesh)
  s.state_sharding = jax.tree.map(lambda _: rep, s.state)
  if initialize:
    s.state = jax.jit(s.init_state, out_shardings=s.state_sharding)()
  return s


def stored_image_shape(config: ml_collections.ConfigDict):
  """The dataset's image shape where `config.input` does not fix the model's input size
  (the dataset is read only then), else None."""
  if config.input.pad_to or config.input.image_size:
    return None
  from input_pipeline import datasets

  return datasets.get_builder(config.dataset).info.features['image'].shape


def one_device() -> list:
  """One device suffices to write or read a checkpoint that any mesh restores, and
  spares orbax's per-array slicing of replicated arrays (a compilation each on CPU)."""
  return jax.devices()[:1] if jax.process_count() == 1 else None


def open_checkpoints(
  config: ml_collections.ConfigDict, workdir: str, read_only: bool = False
) -> checkpoint.Checkpoints:
  """The checkpoints of `workdir` with the config's keep and best-by-metric policy
  (`read_only` for the modes that only look at a run: nothing is made or saved)."""
  return checkpoint.Checkpoints(
    workdir,
    config.keep_checkpoints,
    config.keep_best_checkpoints,
    config.best_metric,
    config.best_mode,
    read_only=read_only,
  )


def restore(s: Setup, checkpoints: checkpoint.Checkpoints, which: str = 'latest'):
  """The state of checkpoint `which` ('latest', 'best' or a step) in `s`'s shardings.

  Raises:
    UserError: no checkpoint, none with evaluation metrics for 'best', or none that
      restores.
  """
  if checkpoints.latest_step() is None:
    raise UserError(
      f'no checkpoint in {checkpoints.directory}; train first (--mode=train with this '
      '--workdir) or import weights (--mode=convert --config.init_from=FILE)'
    )
  step = checkpoints.resolve_step(which)
  return checkpoints.restore(s.abstract_state(), step)


def restore_from(
  config: ml_collections.ConfigDict, workdir: str, which: str = 'latest', devices=None
):
  """(setup, state) of checkpoint `which` of `workdir`, without initialising a state.

  For the modes that only look at a trained network (export, predict, inspect).
  """
  s = create(
    config, devices=devices, stored_image_shape=stored_image_shape(config), initialize=False
  )
  checkpoints = open_checkpoints(config, workdir, read_only=True)
  try:
    state = restore(s, checkpoints, which)
  finally:
    checkpoints.close()
  return s, state
