"""The workdir's record of its run: `config.json`, and refusing to mix two runs."""

import json
import os

import jax
import ml_collections

from train_lib.errors import UserError

# Fields that may change between a run and its continuation without making it another
# run: how long to train, how often to log, evaluate and save.
RESUMABLE_FIELDS = frozenset(
  {
    'num_epochs',
    'num_train_steps',
    'log_every_steps',
    'eval_every_steps',
    'checkpoint_every_steps',
    'eval_every_epochs',
    'checkpoint_every_epochs',
    'keep_checkpoints',
    'eval_batch_size',
    'dataset.data_dir',
    # Where the starting weights came from and what the other modes look at: a run
    # converted from a file continues without repeating --config.init_from.
    'init_from',
    'init_from_strict',
    'export_to',
  }
)
# Whole groups of fields that only the other modes read, or that change speed only.
RESUMABLE_PREFIXES = ('inspect.', 'predict.', 'system.')
# The resolved schedule, written beside the config; it follows from the fields above.
SCHEDULE_KEY = 'schedule'


def flatten(d, prefix='') -> dict:
  """{'a.b': value} of a nested dict."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def check_config(
  config: ml_collections.ConfigDict, workdir: str, allow_change: bool = False
) -> None:
  """Refuses a workdir that holds a run with another config.

  Args:
    config: the resolved config of this run.
    workdir: the run's directory.
    allow_change: accept differing fields.

  Raises:
    UserError: the workdir's config differs in fields outside RESUMABLE_FIELDS.
  """
  old = read_config(workdir)
  if old is not None:
    a, b = flatten(old), flatten(json.loads(config.to_json()))
    # Fields the old run did not have yet (added to configs/default.py since) are new
    # defaults, not a different run.
    changed = sorted(
      k
      for k in a
      if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS and not k.startswith(RESUMABLE_PREFIXES)
    )
    if changed and not allow_change:
      raise UserError(
        f'workdir {workdir} holds a run with a different config ({", ".join(changed)});'
        ' use another --workdir, or pass --allow_config_change to continue it anyway'
      )


def read_config(workdir: str) -> dict | None:
  """DIR/config.json without the resolved schedule, or None where there is none."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    old = json.load(f)
  old.pop(SCHEDULE_KEY, None)
  return old


def record_config(
  config: ml_collections.ConfigDict, workdir: str, schedule: dict | None = None
) -> None:
  """Writes the resolved config to DIR/config.json (atomically, process 0 only), with
  the resolved schedule (steps, epochs, batch, peak lr, ...) under 'schedule'."""
  path = os.path.join(workdir, 'config.json')
  new = json.loads(config.to_json())
  if schedule is not None:
    new[SCHEDULE_KEY] = schedule
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(new, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
