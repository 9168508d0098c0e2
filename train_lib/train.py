"""`train_and_evaluate` and `evaluate`: the loop shared by every experiment."""

import contextlib
import time

import jax
import jax.numpy as jnp
import ml_collections

from input_pipeline import batches, datasets, feeds
from models import registry
from train_lib import checkpoint, optim, preemption, sharding, steps, system, tasks
from train_lib import workdir as workdir_lib
from train_lib.errors import UserError
from train_lib.metrics_writer import MetricWriter, info


class _Setup:
  """What both modes need: mesh, data, model, optimizer, state and compiled steps."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, devices=None):
    self.mesh = sharding.create_mesh(devices)
    sharding.check_batch_size(config.batch_size, self.mesh, 'batch_size')
    sharding.check_batch_size(config.eval_batch_size, self.mesh, 'eval_batch_size')
    builder = datasets.get_builder(config.dataset)
    n_train = datasets.num_examples(builder, config.dataset.train_split)
    self.steps_per_epoch = n_train // config.batch_size
    if not self.steps_per_epoch:
      raise UserError(
        f'batch_size={config.batch_size} exceeds the {n_train} training '
        'examples; set a smaller --config.batch_size'
      )
    self.total_steps = (
      config.num_train_steps
      if config.num_train_steps > 0
      else int(config.num_epochs * self.steps_per_epoch)
    )
    self.builder = builder
    self.task = tasks.get_task(config)  # classification, segmentation, saliency
    self.task.check_features(builder)
    self.feed = feeds.choose_feed(config, builder)  # device_resident | host
    model = registry.create_model(
      config.model, num_classes=config.dataset.num_classes, half_precision=config.half_precision
    )
    tx = optim.create_optimizer(config, self.steps_per_epoch, self.total_steps)
    image_shape = builder.info.features['image'].shape
    rep = sharding.replicated(self.mesh)
    abstract = jax.eval_shape(lambda: steps.create_train_state(model, tx, config, image_shape))
    state_sharding = jax.tree.map(lambda _: rep, abstract)
    self.state = jax.jit(
      lambda: steps.create_train_state(model, tx, config, image_shape), out_shardings=state_sharding
    )()
    self.model = model
    self.train_step, self.eval_step = steps.compile_steps(
      model, tx, config, self.mesh, state_sharding, self.feed
    )
    self.checkpoints = checkpoint.Checkpoints(
      workdir,
      config.keep_checkpoints,
      config.keep_best_checkpoints,
      config.best_metric,
      config.best_mode,
    )


def evaluate(eval_step, state, data, config, mesh, task=None) -> dict[str, float]:
  """The task's metrics (loss, accuracy, ...) over every example of `data` once.

  `data` is a split in host memory, or a function returning a pass of padded and
  masked batches (`feeds.eval_inputs`).
  """
  totals = None
  host = data() if callable(data) else batches.eval_batches(data, config.eval_batch_size)
  for batch in batches.prefetch_to_device(host, sharding.batch_sharding(mesh)):
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  return (task or tasks.get_task(config)).finalize(jax.device_get(totals))


def _eval_split_name(split: str) -> str:
  return 'test' if split.startswith('test') else 'validation'


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False, devices=None
) -> dict[str, float]:
  """Trains (resuming from DIR/checkpoints), evaluates periodically and at the end.

  Args:
    config: the experiment config.
    workdir: where checkpoints, metrics.jsonl, TensorBoard events and config.json go.
    allow_config_change: continue a run in `workdir` whose config differs.
    devices: the devices of the mesh (default: all).

  Returns:
    The final evaluation metrics.

  Raises:
    UserError: bad config or data, a diverged loss, a failed checkpoint save.
    Preempted: SIGTERM or SIGINT arrived; the state was checkpointed first.
  """
  workdir_lib.check_config(config, workdir, allow_config_change)
  s = _Setup(config, workdir, devices)
  workdir_lib.record_config(config, workdir)
  state = s.state
  if s.checkpoints.latest_step() is not None:
    state = s.checkpoints.restore(state)
    info(f'resumed from step {int(state.step)} of {s.checkpoints.directory}')
  start = int(jax.device_get(state.step))
  eval_data = feeds.eval_inputs(config, s.builder, s.task.load_arrays)
  eval_split = _eval_split_name(config.dataset.eval_split)
  every = lambda n: s.steps_per_epoch if n <= 0 else n  # noqa: E731
  eval_every = every(config.eval_every_steps)
  ckpt_every = every(config.checkpoint_every_steps)
  writer = MetricWriter(workdir, s.total_steps)
  log = _TrainLog(config, s, writer, start)
  info(
    f'training {config.model.name} on {config.dataset.name}: {s.total_steps} steps of '
    f'{config.batch_size} on {s.mesh.devices.size} device(s), from step {start}, '
    f'{s.feed} feed'
  )
  for line in system.notes(config, system.mesh_platform(s.mesh)):
    info(line)

  # Per step: (batch,) made on the host, or (data, perm) resident on the devices.
  inputs = feeds.train_inputs(config, s.builder, s.mesh, s.feed, start, s.task.load_arrays)
  eval_metrics = None
  with preemption.StopRequest() as stop, _finish_saves_on_error(s.checkpoints):
    for step in range(start + 1, s.total_steps + 1):
      state, metrics = s.train_step(state, *next(inputs))
      log.add(step, metrics)
      is_last = step == s.total_steps
      if step % config.log_every_steps == 0 or is_last:
        log.write(step)
      if step % eval_every == 0 or is_last:
        log.check_finite(step)
        eval_metrics = evaluate(s.eval_step, state, eval_data, config, s.mesh, s.task)
        writer.write(step, eval_split, eval_metrics)
        s.task.write_pictures(s.model, state, eval_data, step, workdir)
        s.checkpoints.save(state, eval_metrics)
      elif step % ckpt_every == 0:
        log.check_finite(step)
        s.checkpoints.save(state)
      if not is_last and stop.agreed(sync=step % config.log_every_steps == 0):
        log.check_finite(step)
        s.checkpoints.save(state)
        s.checkpoints.wait()
        raise Preempted(
          f'stopped by {stop.signal_name} after step {step}; the checkpoint '
          f'is in {s.checkpoints.directory}; run the same command again '
          'to resume'
        )
  if eval_metrics is None:  # Nothing left to train: report the final state again.
    eval_metrics = evaluate(s.eval_step, state, eval_data, config, s.mesh, s.task)
    writer.write(start, eval_split, eval_metrics)
  s.checkpoints.save(state)
  s.checkpoints.wait()
  s.checkpoints.close()
  writer.close()
  return eval_metrics


@contextlib.contextmanager
def _finish_saves_on_error(checkpoints):
  """On an error in the loop, lets the checkpoints already started commit first."""
  try:
    yield
  except UserError:
    checkpoints.wait()
    raise


class Preempted(Exception):
  """The run stopped on a signal after writing a checkpoint; the message says more."""


class _TrainLog:
  """Accumulates train metrics on the device; fetches them only when written.

  Also remembers the first step whose loss was not finite, so a diverged run stops
  naming it before any checkpoint of a NaN state is written.
  """

  def __init__(self, config, setup, writer, start):
    self._config, self._writer = config, writer
    self._lr = optim.learning_rate_schedule(config, setup.steps_per_epoch, setup.total_steps)
    self._checkpoints = setup.checkpoints
    self._sums, self._t0, self._t0_step = None, time.time(), start
    self._first_bad = jnp.zeros((), jnp.int32)

  def add(self, step, metrics):
    self._sums = (
      metrics if self._sums is None else jax.tree.map(lambda a, b: a + b, self._sums, metrics)
    )
    bad = jnp.logical_not(jnp.isfinite(metrics['loss']))
    self._first_bad = jnp.where((self._first_bad == 0) & bad, step, self._first_bad)

  def check_finite(self, step):
    """Raises UserError if any loss up to `step` was NaN or infinite."""
    first_bad = int(jax.device_get(self._first_bad))
    if first_bad:
      last = self._checkpoints.latest_step()
      where = (
        f'the last good checkpoint is step {last} in {self._checkpoints.directory}'
        if last is not None
        else 'no checkpoint was written'
      )
      raise UserError(
        f'the loss became NaN or infinite at step {first_bad} (checked at '
        f'step {step}); {where}; lower --config.learning_rate or add '
        'warm-up (--config.warmup_epochs)'
      )

  def write(self, step):
    sums = jax.device_get(self._sums)
    rate = (step - self._t0_step) * self._config.batch_size / (time.time() - self._t0)
    self.check_finite(step)
    self._writer.write(
      step,
      'train',
      {
        'loss': sums['loss'] / sums['count'],
        'accuracy': sums['correct'] / sums['count'],
        'learning_rate': self._lr(step - 1),
        'images_per_sec': rate,
      },
    )
    self._sums, self._t0, self._t0_step = None, time.time(), step


def evaluate_checkpoint(
  config: ml_collections.ConfigDict, workdir: str, which: str = 'latest', devices=None
) -> dict[str, float]:
  """`--mode=eval`: restores a checkpoint of DIR and evaluates it.

  Args:
    config: the experiment config.
    workdir: the run's directory.
    which: 'latest', 'best' (by config.best_metric at evaluation) or a step number.
    devices: the devices of the mesh (default: all).
  """
  s = _Setup(config, workdir, devices)
  if s.checkpoints.latest_step() is None:
    raise UserError(
      f'no checkpoint in {s.checkpoints.directory}; train first '
      '(--mode=train) or point --workdir at a trained run'
    )
  if which == 'latest':
    step = None
  elif which == 'best':
    step = s.checkpoints.best_step()
    if step is None:
      raise UserError(
        f'no checkpoint in {s.checkpoints.directory} has evaluation '
        'metrics; use --checkpoint=latest'
      )
  elif which.isdigit():
    step = int(which)
  else:
    raise UserError(f"--checkpoint={which} is not 'latest', 'best' or a step number")
  state = s.checkpoints.restore(s.state, step)
  eval_data = feeds.eval_inputs(config, s.builder, s.task.load_arrays)
  metrics = evaluate(s.eval_step, state, eval_data, config, s.mesh, s.task)
  writer = MetricWriter(workdir, s.total_steps)
  writer.write(int(state.step), _eval_split_name(config.dataset.eval_split), metrics)
  writer.close()
  s.checkpoints.close()
  return metrics
