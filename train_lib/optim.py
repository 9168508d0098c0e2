"""Optimizers and learning-rate schedules (optax) from the config."""

import jax
import ml_collections
import optax

from train_lib.errors import UserError


def learning_rate_schedule(
  config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int
) -> optax.Schedule:
  """Linear warm-up from 0, then constant, cosine to 0, or step decay (epochs)."""
  base = config.learning_rate
  warmup = int(round(config.warmup_epochs * steps_per_epoch))
  if config.lr_schedule == 'constant':
    main = optax.constant_schedule(base)
  elif config.lr_schedule == 'cosine':
    main = optax.cosine_decay_schedule(base, max(1, total_steps - warmup))
  elif config.lr_schedule == 'step':
    boundaries = {
      int(round(e * steps_per_epoch)) - warmup: config.lr_decay for e in config.lr_boundaries_epochs
    }
    main = optax.piecewise_constant_schedule(base, boundaries)
  else:
    raise UserError(
      f"unknown lr_schedule '{config.lr_schedule}'; valid: constant, "
      'cosine, step (set --config.lr_schedule)'
    )
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])


def _decay_mask(params, which: str):
  if which == 'all':
    return jax.tree.map(lambda _: True, params)
  if which == 'kernels':  # biases, BN scales and offsets are vectors
    return jax.tree.map(lambda p: p.ndim > 1, params)
  raise UserError(f"unknown weight_decay_mask '{which}'; valid: all, kernels")


def create_optimizer(
  config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int
) -> optax.GradientTransformation:
  """The optimizer of the config, with weight decay as the recipe states it.

  For SGD the decay is added to the gradient before momentum (L2 regularization, as
  PyTorch's `weight_decay` and the papers); AdamW decouples it.
  """
  if config.learning_rate < 0:
    raise UserError(
      f'learning_rate={config.learning_rate} is negative; set '
      '--config.learning_rate to a positive value'
    )
  lr = learning_rate_schedule(config, steps_per_epoch, total_steps)
  mask = lambda params: _decay_mask(params, config.weight_decay_mask)  # noqa: E731
  if config.optimizer == 'sgd':
    return optax.chain(
      optax.add_decayed_weights(config.weight_decay, mask),
      optax.sgd(lr, momentum=config.momentum or None, nesterov=config.nesterov),
    )
  if config.optimizer == 'adamw':
    return optax.adamw(lr, weight_decay=config.weight_decay, mask=mask)
  raise UserError(
    f"unknown optimizer '{config.optimizer}'; valid: sgd, adamw (set --config.optimizer)"
  )
