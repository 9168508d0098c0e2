"""Optimizers and learning-rate schedules (optax) from the config.

The schedule is resolved once, from the final config (after the command line's
overrides), into a `Schedule`: the steps, the peak learning rate, the warm-up and the
boundaries in steps at this batch size. The config states its rules and this module
applies them (configs/default.py, Schedule): the linear scaling rule
(`lr_batch`), and a schedule in iterations of a paper's batch (`schedule_batch`) or in
epochs.
"""

import dataclasses

import jax
import ml_collections
import optax

from train_lib.errors import UserError

SCHEDULES = ('constant', 'cosine', 'step')
OPTIMIZERS = ('sgd', 'adamw')
DECAY_MASKS = ('all', 'kernels')  # kernels: no decay on biases and norm layers


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The schedule of a run, in steps of its batch: what training prints and records."""

  steps: int  # training steps in all
  epochs: float  # steps / steps_per_epoch
  batch: int  # the global batch size
  peak_lr: float  # after the warm-up, before any decay
  warmup_steps: int  # linear warm-up from 0 to peak_lr
  boundaries: tuple[int, ...]  # steps at which lr *= lr_decay (empty for cosine, constant)
  steps_per_epoch: int

  def line(self) -> str:
    """One line, `schedule: steps=... epochs=... batch=... peak_lr=... warmup_steps=...
    boundaries=s1,s2,...` (boundaries= is empty for cosine and constant)."""
    return (
      f'schedule: steps={self.steps} epochs={_short(self.epochs)} batch={self.batch} '
      f'peak_lr={_short(self.peak_lr)} warmup_steps={self.warmup_steps} '
      f'boundaries={",".join(str(b) for b in self.boundaries)}'
    )

  def as_dict(self) -> dict:
    """The same values, JSON-ready."""
    return {**dataclasses.asdict(self), 'boundaries': list(self.boundaries)}


def _short(x: float) -> str:
  """A float in at most 6 significant digits, always with a point or an exponent."""
  return str(float(f'{x:.6g}'))


def resolve_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int) -> Schedule:
  """The schedule that the final `config` states, at its batch size.

  Args:
    config: the experiment config, overrides applied.
    steps_per_epoch: training steps per pass over the training split at
      `config.batch_size` (examples // batch_size).

  Returns:
    The resolved schedule.

  Raises:
    UserError: a value out of range, or a length, warm-up or boundaries stated both in
      epochs and in steps.
  """
  batch = config.batch_size
  for name, low in (('batch_size', 1), ('lr_batch', 0), ('schedule_batch', 0)):
    if config[name] < low:
      raise UserError(f'{name}={config[name]} must be >= {low}; set --config.{name}')
  if steps_per_epoch < 1:
    raise UserError(f'steps_per_epoch={steps_per_epoch}: batch_size={batch} exceeds the data')
  if config.learning_rate < 0:
    raise UserError(
      f'learning_rate={config.learning_rate} is negative; set '
      '--config.learning_rate to a positive value'
    )
  if config.lr_schedule not in SCHEDULES:
    raise UserError(
      f"unknown lr_schedule '{config.lr_schedule}'; valid: {', '.join(SCHEDULES)} "
      '(set --config.lr_schedule)'
    )
  for epochs, steps in (
    ('warmup_epochs', 'warmup_steps'),
    ('lr_boundaries_epochs', 'lr_boundaries_steps'),
  ):
    if config[epochs] and config[steps]:
      raise UserError(
        f'{epochs}={config[epochs]} and {steps}={config[steps]} are both set; '
        f'set one of them to {0 if "warmup" in steps else "()"}'
      )

  def in_steps(n):  # steps stated at schedule_batch, at this batch
    return int(round(n * config.schedule_batch / batch)) if config.schedule_batch else int(n)

  if config.num_train_steps > 0:
    steps = in_steps(config.num_train_steps)
  else:
    steps = int(config.num_epochs * steps_per_epoch)
  if steps < 1:
    raise UserError(
      f'the run has {steps} steps (num_train_steps={config.num_train_steps}, '
      f'num_epochs={config.num_epochs}); set --config.num_train_steps or --config.num_epochs'
    )
  if config.warmup_steps:
    warmup = in_steps(config.warmup_steps)
  else:
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
  boundaries = ()
  if config.lr_schedule == 'step':
    if config.lr_boundaries_steps:
      stated = [in_steps(s) for s in config.lr_boundaries_steps]
    else:
      stated = [int(round(e * steps_per_epoch)) for e in config.lr_boundaries_epochs]
    boundaries = tuple(sorted(set(stated)))
  peak = config.learning_rate * batch / config.lr_batch if config.lr_batch else config.learning_rate
  return Schedule(
    steps=steps,
    epochs=steps / steps_per_epoch,
    batch=batch,
    peak_lr=peak,
    warmup_steps=warmup,
    boundaries=boundaries,
    steps_per_epoch=steps_per_epoch,
  )


def learning_rate_schedule(config: ml_collections.ConfigDict, schedule: Schedule) -> optax.Schedule:
  """Linear warm-up from 0, then constant, cosine to 0, or step decay."""
  peak, warmup = schedule.peak_lr, schedule.warmup_steps
  if config.lr_schedule == 'constant':
    main = optax.constant_schedule(peak)
  elif config.lr_schedule == 'cosine':
    main = optax.cosine_decay_schedule(peak, max(1, schedule.steps - warmup))
  elif config.lr_schedule == 'step':
    main = optax.piecewise_constant_schedule(
      peak, {b - warmup: config.lr_decay for b in schedule.boundaries}
    )
  else:
    raise UserError(
      f"unknown lr_schedule '{config.lr_schedule}'; valid: {', '.join(SCHEDULES)} "
      '(set --config.lr_schedule)'
    )
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def _decay_mask(params, which: str):
  if which == 'all':
    return jax.tree.map(lambda _: True, params)
  if which == 'kernels':  # biases, BN scales and offsets are vectors
    return jax.tree.map(lambda p: p.ndim > 1, params)
  raise UserError(f"unknown weight_decay_mask '{which}'; valid: {', '.join(DECAY_MASKS)}")


def create_optimizer(
  config: ml_collections.ConfigDict, schedule: Schedule
) -> optax.GradientTransformation:
  """The optimizer of the config, with weight decay as the recipe states it.

  For SGD the decay is added to the gradient before momentum (L2 regularization, as
  PyTorch's `weight_decay` and the papers); AdamW decouples it.
  """
  lr = learning_rate_schedule(config, schedule)
  mask = lambda params: _decay_mask(params, config.weight_decay_mask)  # noqa: E731
  if config.optimizer == 'sgd':
    return optax.chain(
      optax.add_decayed_weights(config.weight_decay, mask),
      optax.sgd(lr, momentum=config.momentum or None, nesterov=config.nesterov),
    )
  if config.optimizer == 'adamw':
    return optax.adamw(lr, weight_decay=config.weight_decay, mask=mask)
  raise UserError(
    f"unknown optimizer '{config.optimizer}'; valid: {', '.join(OPTIMIZERS)} "
    '(set --config.optimizer)'
  )
