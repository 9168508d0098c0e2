"""`train_and_evaluate` and `evaluate`: the loop shared by every experiment."""

import contextlib
import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from input_pipeline import batches, datasets, feeds
from train_lib import (
  checkpoint,
  optim,
  preemption,
  setup,
  sharding,
  steps,
  system,
  tasks,
  validation,
)
from train_lib import workdir as workdir_lib
from train_lib.errors import USER_ERRORS, UserError
from train_lib.metrics_writer import MetricWriter, info


@dataclasses.dataclass
class _Run:
  """What train and eval share: the data, the one setup, compiled steps, checkpoints."""

  s: setup.Setup
  builder: Any  # the prepared TFDS dataset
  feed: str  # 'device_resident' | 'host' (input_pipeline/feeds.py)
  train_step: Any
  eval_step: Any
  checkpoints: checkpoint.Checkpoints

  @classmethod
  def start(
    cls, config: ml_collections.ConfigDict, workdir: str, devices=None, read_only=False
  ) -> '_Run':
    task = tasks.get_task(config)
    builder = datasets.get_builder(config.dataset)
    n_train = datasets.num_examples(builder, config.dataset.train_split)
    if n_train < config.batch_size:
      raise UserError(
        f'batch_size={config.batch_size} exceeds the {n_train} training examples; '
        'set a smaller --config.batch_size'
      )
    task.check_classes(feeds.check_features(config, builder, labels=task.labels))
    feed = feeds.choose_feed(config, builder, labels=task.labels)
    s = setup.create(
      config,
      devices=devices,
      task=task,
      steps_per_epoch=n_train // config.batch_size,
      stored_image_shape=builder.info.features['image'].shape,
    )
    sharding.check_batch_size(config.batch_size, s.mesh, 'batch_size')
    sharding.check_batch_size(config.eval_batch_size, s.mesh, 'eval_batch_size')
    train_step, eval_step = steps.compile_steps(s, feed)
    checkpoints = setup.open_checkpoints(config, workdir, read_only)
    return cls(s, builder, feed, train_step, eval_step, checkpoints)

  def eval_data(self):
    return feeds.eval_inputs(self.s.config, self.builder, labels=self.s.task.labels)


def evaluate(eval_step, state, data, config, mesh, task) -> dict[str, float]:
  """The task's metrics (loss, accuracy, ...) over every example of `data` once.

  `data` is a split in host memory, or a function returning a pass of padded and
  masked batches (`feeds.eval_inputs`).
  """
  totals = None
  host = data() if callable(data) else batches.eval_batches(data, config.eval_batch_size)
  for batch in batches.prefetch_to_device(host, sharding.batch_sharding(mesh)):
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  return task.finalize(jax.device_get(totals))


def _eval_split_name(split: str) -> str:
  return 'test' if split.startswith('test') else 'validation'


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False, devices=None
) -> dict[str, float]:
  """Trains (resuming from DIR/checkpoints), evaluates periodically and at the end.

  Args:
    config: the validated experiment config.
    workdir: where checkpoints, metrics.jsonl, TensorBoard events and config.json go.
    allow_config_change: continue a run in `workdir` whose config differs.
    devices: the devices of the mesh (default: all).

  Returns:
    The final evaluation metrics.

  Raises:
    UserError: bad config or data, another run in `workdir`, a diverged loss, a failed
      checkpoint save, a workdir that vanished or turned read-only.
    Preempted: SIGTERM or SIGINT arrived; the state was checkpointed first.
  """
  validation.check_config(config, 'train')
  with workdir_lib.lock(workdir):  # before anything is written there
    return _train_and_evaluate(config, workdir, allow_config_change, devices)


def _train_and_evaluate(config, workdir, allow_config_change, devices) -> dict[str, float]:
  """The run of `train_and_evaluate`, with the workdir held."""
  workdir_lib.check_config(config, workdir, allow_config_change)
  run = _Run.start(config, workdir, devices)
  s, checkpoints, schedule = run.s, run.checkpoints, run.s.schedule
  workdir_lib.record_config(config, workdir, schedule.as_dict())
  state = s.state
  if checkpoints.latest_step() is not None:
    state = checkpoints.restore(state)
    info(f'resumed from step {int(state.step)} of {checkpoints.directory}')
  start = int(jax.device_get(state.step))
  info(schedule.line())
  info(
    f'training {config.model.name} on {config.dataset.name}: {schedule.steps} steps of '
    f'{config.batch_size} on {s.mesh.devices.size} device(s), from step {start}, '
    f'{run.feed} feed'
  )
  for line in system.notes(config, system.mesh_platform(s.mesh)):
    info(line)
  eval_data = run.eval_data()
  eval_every = _period(config.eval_every_steps, config.eval_every_epochs, schedule)
  ckpt_every = _period(config.checkpoint_every_steps, config.checkpoint_every_epochs, schedule)
  writer = MetricWriter(workdir, schedule.steps)
  log = _TrainLog(config, s, checkpoints, writer, start)
  evaluate_now = lambda state: evaluate(  # noqa: E731
    run.eval_step, state, eval_data, config, s.mesh, s.task
  )

  # Per step: (batch,) made on the host, or (data, perm) resident on the devices.
  inputs = feeds.train_inputs(config, run.builder, s.mesh, run.feed, start, labels=s.task.labels)
  eval_metrics = None
  with preemption.StopRequest() as stop, _stop_cleanly_on_faults(checkpoints, workdir):
    for step in range(start + 1, schedule.steps + 1):
      state, metrics = run.train_step(state, *next(inputs))
      log.add(step, metrics)
      is_last = step == schedule.steps
      if step % config.log_every_steps == 0 or is_last:
        log.write(step)
      if step % eval_every == 0 or is_last:
        log.check_finite(step)
        eval_metrics = evaluate_now(state)
        writer.write(step, _eval_split_name(config.dataset.eval_split), eval_metrics)
        s.task.write_pictures(s.model, state, eval_data, step, workdir)
        checkpoints.save(state, eval_metrics)
      elif step % ckpt_every == 0:
        log.check_finite(step)
        checkpoints.save(state)
      if not is_last and stop.agreed(sync=step % config.log_every_steps == 0):
        log.check_finite(step)
        checkpoints.save(state)
        checkpoints.wait()
        raise Preempted(
          f'stopped by {stop.signal_name} after step {step}; the checkpoint is in '
          f'{checkpoints.directory}; run the same command again to resume'
        )
    if eval_metrics is None:  # Nothing left to train: report the final state again.
      eval_metrics = evaluate_now(state)
      writer.write(start, _eval_split_name(config.dataset.eval_split), eval_metrics)
    checkpoints.save(state)
    checkpoints.wait()  # a signal now waits for this last commit (the run is done)
  checkpoints.close()
  writer.close()
  return eval_metrics


def _period(steps: int, epochs: float, schedule: optim.Schedule) -> int:
  """A period in steps: `steps` where positive, else `epochs` epochs (at least 1 step)."""
  return steps if steps > 0 else max(1, round(epochs * schedule.steps_per_epoch))


@contextlib.contextmanager
def _stop_cleanly_on_faults(checkpoints, workdir):
  """On an error in the loop, lets the checkpoints already started commit first; a
  workdir that failed under the run (full, gone, read-only) is one UserError."""
  try:
    yield
  except USER_ERRORS:
    checkpoints.wait()
    raise
  except OSError as e:
    fault = workdir_lib.write_fault(workdir, e)
    if fault is None:
      raise
    checkpoints.abandon()
    raise fault from None


class Preempted(Exception):
  """The run stopped on a signal after writing a checkpoint; the message says more."""


class _TrainLog:
  """Accumulates train metrics on the device; fetches them only when written.

  Also remembers the first step whose loss was not finite, so a diverged run stops
  naming it before any checkpoint of a NaN state is written.
  """

  def __init__(self, config, s: setup.Setup, checkpoints, writer, start):
    self._config, self._writer = config, writer
    self._lr = optim.learning_rate_schedule(config, s.schedule)
    self._checkpoints = checkpoints
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

  Read-only towards the run (it may be training meanwhile): the metrics are printed and
  written to DIR/eval_<step>.json, not to metrics.jsonl; nothing else is written.

  Args:
    config: the experiment config.
    workdir: the run's directory.
    which: 'latest', 'best' (by config.best_metric at evaluation) or a step number.
    devices: the devices of the mesh (default: all).
  """
  validation.check_config(config, 'eval')
  run = _Run.start(config, workdir, devices, read_only=True)
  try:
    state = setup.restore(run.s, run.checkpoints, which)
  finally:
    run.checkpoints.close()
  metrics = evaluate(run.eval_step, state, run.eval_data(), config, run.s.mesh, run.s.task)
  step, split = int(state.step), _eval_split_name(config.dataset.eval_split)
  info(' | '.join([f'eval of step {step}', split] + [f'{k} {v:.4f}' for k, v in metrics.items()]))
  if jax.process_index() == 0:
    workdir_lib.write_json(
      os.path.join(workdir, f'eval_{step}.json'),
      {'step': step, 'split': split, **{k: float(v) for k, v in metrics.items()}},
    )
  return metrics
