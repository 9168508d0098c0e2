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

from train_lib import checkpoint, setup, steps
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
  if checkpoint.exists(workdir):
    if only_if_new:
      return
    raise UserError(
      f'{os.path.join(workdir, "checkpoints")} holds checkpoints already; '
      'convert into a new --workdir'
    )
  workdir_lib.check_config(config, workdir, allow_config_change)
  _, state, report = pretrained.state_from_file(config, setup.one_device())
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


def export_weights(config: ml_collections.ConfigDict, workdir: str, which: str = 'latest') -> None:
  """Writes checkpoint `which` of `workdir` to `config.export_to` in PyTorch's names."""
  if not config.export_to.endswith('.safetensors'):
    raise UserError(f'--config.export_to={config.export_to} must end in .safetensors')
  s, state = setup.restore_from(config, workdir, which, setup.one_device())
  step = int(jax.device_get(state.step))
  tensors = pretrained.export(s.model, jax.device_get(steps.model_variables(state)))
  weight_files.write_safetensors(config.export_to, tensors)
  total = sum(int(np.prod(t.shape)) for t in tensors.values())
  info(
    f'exported step {step} of {workdir} to {config.export_to}: {len(tensors)} '
    f'tensors, {total} values'
  )
