"""One check of the resolved config and the command line, before anything is built.

Every failure is a UserError naming the field and how to fix it; main.py prints it as
one `error:` line and exits 2 with the workdir untouched. Checks that need the data
or the devices (a batch the devices can't split, a crop the images need) stay where
those are known, but still run before anything is written.
"""

import os

import ml_collections

from train_lib import optim, setup, tasks
from train_lib.errors import UserError

BEST_MODES = ('max', 'min')
PAD_MODES = ('constant', 'reflect')
# Modes that write into --workdir, and those that only read a run.
WRITING_MODES = ('train', 'convert', 'table')


def _fail(field: str, value, rule: str, fix: str | None = None) -> None:
  raise UserError(
    f'{field}={value!r} {rule}; set --config.{field}={fix}'
    if fix
    else f'{field}={value!r} {rule}; set --config.{field}'
  )


def _positive(config, field: str, fix) -> None:
  value = _get(config, field)
  if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
    _fail(field, value, 'must be positive', fix)


def _at_least(config, field: str, low, fix=None) -> None:
  value = _get(config, field)
  if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
    _fail(field, value, f'must be >= {low}', fix)


def _every(config, field: str) -> None:
  """A period in steps: positive, or -1 (once per epoch)."""
  value = _get(config, field)
  if value != -1 and value <= 0:
    _fail(field, value, 'must be a positive number of steps or -1 (by epochs)', -1)


def _one_of(config, field: str, valid) -> None:
  value = _get(config, field)
  if value not in valid:
    raise UserError(
      f'{field}={value!r} is not one of {", ".join(valid)}; set --config.{field}={valid[0]}'
    )


def _get(config, field: str):
  node = config
  for part in field.split('.'):
    node = node[part]
  return node


def check_config(config: ml_collections.ConfigDict, mode: str) -> None:
  """Types, ranges and combinations of an experiment config's fields.

  Raises:
    UserError: the first field that is wrong, with the fix.
  """
  _one_of(config, 'task', tasks.TASKS)
  # Data and input.
  _positive(config, 'dataset.num_classes', 10)
  for field in ('input.image_size', 'input.image_width', 'input.pad_to', 'input.crop_padding'):
    _at_least(config, field, 0, 0)
  _positive(config, 'input.channels', 3)
  _one_of(config, 'input.pad_mode', PAD_MODES)
  for field in ('input.mean', 'input.std'):
    if len(_get(config, field)) not in (1, config.input.channels):
      _fail(field, _get(config, field), f'needs 1 or input.channels={config.input.channels} values')
  if min(config.input.std) <= 0:
    _fail('input.std', config.input.std, 'must be positive')
  # Optimizer and schedule.
  _one_of(config, 'optimizer', optim.OPTIMIZERS)
  _one_of(config, 'lr_schedule', optim.SCHEDULES)
  _one_of(config, 'weight_decay_mask', optim.DECAY_MASKS)
  _at_least(config, 'learning_rate', 0, 0.1)
  _at_least(config, 'weight_decay', 0, 0)
  _at_least(config, 'warmup_epochs', 0, 0)
  if not 0 <= config.momentum < 1:
    _fail('momentum', config.momentum, 'must be in [0, 1)', 0.9)
  _positive(config, 'batch_size', 128)
  _positive(config, 'eval_batch_size', 256)
  if config.num_train_steps == -1:
    _positive(config, 'num_epochs', 10)
  elif config.num_train_steps <= 0:
    _fail(
      'num_train_steps', config.num_train_steps, 'must be positive, or -1 (from num_epochs)', -1
    )
  # Eval, checkpoints, runtime.
  _positive(config, 'log_every_steps', 50)
  _every(config, 'eval_every_steps')
  _every(config, 'checkpoint_every_steps')
  _positive(config, 'eval_every_epochs', 1.0)
  _positive(config, 'checkpoint_every_epochs', 1.0)
  _positive(config, 'keep_checkpoints', 3)
  _at_least(config, 'keep_best_checkpoints', 0, 1)
  _one_of(config, 'best_mode', BEST_MODES)
  _one_of(config, 'half_precision_dtype', tuple(setup.HALF_PRECISION_DTYPES))
  _positive(config, 'steps_per_call', 1)
  if config.steps_per_call != 1 and mode != 'bench':
    _fail('steps_per_call', config.steps_per_call, 'is for --mode=bench only', 1)
  if mode == 'bench':
    _positive(config, 'bench_steps', 50)
    _at_least(config, 'bench_warmup_steps', 0, 5)


def check_workdir(workdir: str | None, mode: str) -> None:
  """A workdir that is a directory, or can be made, where the mode writes one.

  Raises:
    UserError: it names a file, or a place where no directory can be made.
  """
  if not workdir:
    return
  path = os.path.abspath(os.path.expanduser(workdir))
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise UserError(f'--workdir={workdir} is a file, not a directory; give a directory path')
    if mode in WRITING_MODES and not os.access(path, os.W_OK | os.X_OK):
      raise UserError(f'--workdir={workdir} is not writable; give a directory you can write')
    return
  if mode not in WRITING_MODES:
    return  # the mode says itself that there is nothing to read there
  parent = os.path.dirname(path)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f'--workdir={workdir} can not be made: {parent} is a file')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f'--workdir={workdir} can not be made: {parent} is not writable')


def check_checkpoint_flag(which: str) -> None:
  if which not in ('latest', 'best') and not which.isdigit():
    raise UserError(f"--checkpoint={which} is not 'latest', 'best' or a step number")
