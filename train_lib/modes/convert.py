"""`--mode=convert`: PyTorch weights -> a step-0 checkpoint of DIR, and DIR -> PyTorch.

With `config.init_from`, the file's tensors are put into a freshly initialised train
state of the config's model (strictly checked, train_lib/modes/pretrained.py) and saved as
DIR's checkpoint at step 0, with DIR/config.json, as a run would: `--mode=eval`,
`--mode=predict` and `--mode=train` (fine-tuning) then start from it. With
`config.export_to`, DIR's checkpoint (`--checkpoint`: latest, best or a step) is
written back as a .safetensors file in the source library's names. Both: a round trip.
"""

import os

import jax
import ml_collections
import numpy as np
from flax import traverse_util

from models import registry
from train_lib import checkpoint, optim, sharding, steps
from train_lib import workdir as workdir_lib
from train_lib.errors import UserError
from train_lib.metrics_writer import info
from train_lib.modes import pretrained, weight_files


def run(
  config: ml_collections.ConfigDict,
  workdir: str,
  which: str = 'latest',
  allow_config_change: bool = False,
) -> None:
  """Imports `config.init_from` into `workdir`, then exports to `config.export_to`."""
  if not (config.init_from or config.export_to):
    raise UserError(
      '--mode=convert needs --config.init_from=FILE (import into --workdir) '
      'and/or --config.export_to=FILE.safetensors (export from it)'
    )
  if config.init_from:
    import_weights(config, workdir, allow_config_change)
  if config.export_to:
    export_weights(config, workdir, which)


def _model_and_optimizer(config: ml_collections.ConfigDict):
  model = registry.create_model(
    config.model, num_classes=config.dataset.num_classes, half_precision=config.half_precision
  )
  # The optimizer state's structure does not depend on the schedule's lengths.
  tx = optim.create_optimizer(config, steps_per_epoch=1, total_steps=1)
  return model, tx


def _stored_image_shape(config: ml_collections.ConfigDict):
  """The dataset's image shape, read only when the config does not fix the input size."""
  if config.input.pad_to or config.input.image_size:
    return None
  from input_pipeline import datasets

  return datasets.get_builder(config.dataset).info.features['image'].shape


def _one_device_mesh():
  """One device suffices to write or read a checkpoint that any mesh restores, and
  spares orbax's per-array slicing of replicated arrays (a compilation each on CPU)."""
  return sharding.create_mesh(jax.devices()[:1] if jax.process_count() == 1 else None)


def state_from_file(config: ml_collections.ConfigDict, mesh):
  """A step-0 train state with `config.init_from`'s weights, replicated over `mesh`.

  The file is read and checked before anything compiles. Arrays the file does not fill
  (non-strict loading) get the config's initialisation; XLA drops the initialisers of
  the others from the compiled program, so a strict import compiles quickly.

  Returns:
    (model, state, pretrained.LoadReport).

  Raises:
    UserError: the file does not read, or does not fit the model.
  """
  tensors = weight_files.read_tensors(config.init_from)
  model, tx = _model_and_optimizer(config)
  shape = _stored_image_shape(config)
  create = lambda: steps.create_train_state(model, tx, config, shape)  # noqa: E731
  abstract = jax.eval_shape(create)
  loaded, report = pretrained.load(
    model,
    pretrained.flat_shapes({'params': abstract.params, 'batch_stats': abstract.batch_stats}),
    tensors,
    strict=config.init_from_strict,
    source=config.init_from,
    model_name=config.model.name,
  )

  def build(loaded):
    state = create()
    flat = traverse_util.flatten_dict({'params': state.params, 'batch_stats': state.batch_stats})
    flat.update({p: v.astype(flat[p].dtype) for p, v in loaded.items()})
    variables = traverse_util.unflatten_dict(flat)
    params = variables['params']
    return state.replace(
      params=params, batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params)
    )

  rep = sharding.replicated(mesh)
  state = jax.jit(build, out_shardings=jax.tree.map(lambda _: rep, abstract))(loaded)
  return model, state, report


def import_weights(
  config: ml_collections.ConfigDict,
  workdir: str,
  allow_config_change: bool = False,
  only_if_new: bool = False,
) -> None:
  """Writes `config.init_from`'s weights as the step-0 checkpoint of `workdir`.

  Args:
    config: the experiment config; `init_from`, `init_from_strict` and the model.
    workdir: the run's directory; must hold no checkpoint yet.
    allow_config_change: accept a workdir whose config.json differs.
    only_if_new: do nothing when `workdir` holds checkpoints (train mode's import).

  Raises:
    UserError: the file does not read or fit the model (strict), or `workdir` holds
      checkpoints already (nothing in it is touched).
  """
  if has_checkpoint(workdir):
    if only_if_new:
      return
    raise UserError(
      f'{os.path.join(workdir, "checkpoints")} holds checkpoints already; '
      'convert into a new --workdir'
    )
  workdir_lib.check_config(config, workdir, allow_config_change)
  _, state, report = state_from_file(config, _one_device_mesh())
  workdir_lib.record_config(config, workdir)
  checkpoints = checkpoint.Checkpoints(workdir, config.keep_checkpoints)
  checkpoints.save(state)
  checkpoints.wait()
  checkpoints.close()
  info(
    f'imported {len(report.loaded)} tensors of {config.init_from} into '
    f'{config.model.name}: step 0 of {checkpoints.directory}'
  )
  if report.adapted:
    info(
      'input convolution summed over its RGB channels for 1-channel images: '
      + ', '.join(report.adapted)
    )
  if report.not_loaded:
    info(
      f'not loaded, left at their initialisation ({len(report.not_loaded)}): '
      + ', '.join(report.not_loaded)
    )
  if report.unused:
    info(f'tensors of the file not used ({len(report.unused)}): ' + ', '.join(report.unused))


def has_checkpoint(workdir: str | None) -> bool:
  """Whether `workdir` holds a checkpoint (without creating anything there)."""
  if not workdir or not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return False
  checkpoints = checkpoint.Checkpoints(workdir, keep=1)
  latest = checkpoints.latest_step()
  checkpoints.close()
  return latest is not None


def restore_variables(
  config: ml_collections.ConfigDict, workdir: str, which: str, mesh
) -> tuple[object, dict, int]:
  """(model, {'params', 'batch_stats'}, step) of checkpoint `which` of `workdir`.

  Args:
    config: the config the checkpoint was written with.
    workdir: the run's directory.
    which: 'latest', 'best' or a step number.
    mesh: the mesh to lay the arrays out on (replicated).

  Raises:
    UserError: no checkpoint, or none that restores.
  """
  model, tx = _model_and_optimizer(config)
  shape = _stored_image_shape(config)
  rep = sharding.replicated(mesh)
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
    jax.eval_shape(lambda: steps.create_train_state(model, tx, config, shape)),
  )
  if not has_checkpoint(workdir):
    raise UserError(
      f'no checkpoint in {workdir}; import weights first (--mode=convert '
      '--config.init_from=FILE) or train'
    )
  checkpoints = checkpoint.Checkpoints(workdir, config.keep_checkpoints)
  try:
    step = _checkpoint_step(checkpoints, which)
    state = checkpoints.restore(abstract, step)
  finally:
    checkpoints.close()
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  return model, variables, int(jax.device_get(state.step))


def _checkpoint_step(checkpoints: checkpoint.Checkpoints, which: str) -> int | None:
  if which == 'latest':
    return None
  if which == 'best':
    step = checkpoints.best_step()
    if step is None:
      raise UserError(
        f'no checkpoint in {checkpoints.directory} has evaluation metrics; use --checkpoint=latest'
      )
    return step
  if which.isdigit():
    return int(which)
  raise UserError(f"--checkpoint={which} is not 'latest', 'best' or a step number")


def export_weights(config: ml_collections.ConfigDict, workdir: str, which: str = 'latest') -> None:
  """Writes checkpoint `which` of `workdir` to `config.export_to` in PyTorch's names."""
  if not config.export_to.endswith('.safetensors'):
    raise UserError(f'--config.export_to={config.export_to} must end in .safetensors')
  model, variables, step = restore_variables(config, workdir, which, _one_device_mesh())
  tensors = pretrained.export(model, jax.device_get(variables))
  weight_files.write_safetensors(config.export_to, tensors)
  total = sum(int(np.prod(t.shape)) for t in tensors.values())
  info(
    f'exported step {step} of {workdir} to {config.export_to}: {len(tensors)} '
    f'tensors, {total} values'
  )
