"""`train_and_evaluate` and `evaluate`: the loop shared by every experiment."""

import time

import jax
import ml_collections

from input_pipeline import batches, datasets
from models import registry
from train_lib import checkpoint, optim, sharding, steps, workdir as workdir_lib
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
      raise UserError(f'batch_size={config.batch_size} exceeds the {n_train} training '
                      'examples; set a smaller --config.batch_size')
    self.total_steps = (config.num_train_steps if config.num_train_steps > 0 else
                        int(config.num_epochs * self.steps_per_epoch))
    self.builder = builder
    datasets.check_features(builder, config)
    model = registry.create_model(config.model, num_classes=config.dataset.num_classes,
                                  half_precision=config.half_precision)
    tx = optim.create_optimizer(config, self.steps_per_epoch, self.total_steps)
    image_shape = builder.info.features['image'].shape
    rep = sharding.replicated(self.mesh)
    abstract = jax.eval_shape(lambda: steps.create_train_state(model, tx, config,
                                                               image_shape))
    state_sharding = jax.tree.map(lambda _: rep, abstract)
    self.state = jax.jit(
        lambda: steps.create_train_state(model, tx, config, image_shape),
        out_shardings=state_sharding)()
    self.train_step, self.eval_step = steps.compile_steps(
        model, tx, config, self.mesh, state_sharding)
    self.checkpoints = checkpoint.Checkpoints(workdir, config.keep_checkpoints)


def evaluate(eval_step, state, data, config, mesh) -> dict[str, float]:
  """Mean loss and accuracy over every example of `data` exactly once."""
  totals = None
  for batch in batches.prefetch_to_device(
      batches.eval_batches(data, config.eval_batch_size), sharding.batch_sharding(mesh)):
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  totals = jax.device_get(totals)
  count = totals['count']
  return {'loss': totals['loss'] / count, 'accuracy': totals['correct'] / count}


def _eval_split_name(split: str) -> str:
  return 'test' if split.startswith('test') else 'validation'


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False,
                       devices=None) -> dict[str, float]:
  """Trains (resuming from DIR/checkpoints), evaluates periodically and at the end.

  Args:
    config: the experiment config.
    workdir: where checkpoints, metrics.jsonl, TensorBoard events and config.json go.
    allow_config_change: continue a run in `workdir` whose config differs.
    devices: the devices of the mesh (default: all).

  Returns:
    The final evaluation metrics.
  """
  workdir_lib.check_config(config, workdir, allow_config_change)
  s = _Setup(config, workdir, devices)
  workdir_lib.record_config(config, workdir)
  state = s.state
  if s.checkpoints.latest_step() is not None:
    state = s.checkpoints.restore(state)
    info(f'resumed from step {int(state.step)} of {workdir}/checkpoints')
  start = int(jax.device_get(state.step))
  train_data = datasets.load_arrays(s.builder, config.dataset.train_split)
  eval_data = datasets.load_arrays(s.builder, config.dataset.eval_split)
  eval_split = _eval_split_name(config.dataset.eval_split)
  every = lambda n: s.steps_per_epoch if n <= 0 else n  # noqa: E731
  eval_every, ckpt_every = every(config.eval_every_steps), every(
      config.checkpoint_every_steps)
  lr_fn = optim.learning_rate_schedule(config, s.steps_per_epoch, s.total_steps)
  writer = MetricWriter(workdir, s.total_steps)
  info(f'training {config.model.name} on {config.dataset.name}: {s.total_steps} steps of '
       f'{config.batch_size} on {s.mesh.devices.size} device(s), from step {start}')

  batch_iter = batches.prefetch_to_device(
      batches.train_batches(train_data, config.batch_size, config.seed, start),
      sharding.batch_sharding(s.mesh))
  sums, t0, t0_step = None, time.time(), start
  eval_metrics = None
  for step in range(start + 1, s.total_steps + 1):
    state, metrics = s.train_step(state, next(batch_iter))
    sums = metrics if sums is None else jax.tree.map(lambda a, b: a + b, sums, metrics)
    if step % config.log_every_steps == 0 or step == s.total_steps:
      sums = jax.device_get(sums)
      rate = (step - t0_step) * config.batch_size / (time.time() - t0)
      writer.write(step, 'train', {
          'loss': sums['loss'] / sums['count'],
          'accuracy': sums['correct'] / sums['count'],
          'learning_rate': lr_fn(step - 1), 'images_per_sec': rate})
      sums, t0, t0_step = None, time.time(), step
    if step % eval_every == 0 or step == s.total_steps:
      eval_metrics = evaluate(s.eval_step, state, eval_data, config, s.mesh)
      writer.write(step, eval_split, eval_metrics)
    if step % ckpt_every == 0 or step == s.total_steps:
      s.checkpoints.save(state)
  if eval_metrics is None:  # Nothing left to train: report the final state again.
    eval_metrics = evaluate(s.eval_step, state, eval_data, config, s.mesh)
    writer.write(start, eval_split, eval_metrics)
  s.checkpoints.save(state)
  s.checkpoints.wait()
  s.checkpoints.close()
  writer.close()
  return eval_metrics


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        devices=None) -> dict[str, float]:
  """`--mode=eval`: restores the newest checkpoint of DIR and evaluates it."""
  s = _Setup(config, workdir, devices)
  if s.checkpoints.latest_step() is None:
    raise UserError(f'no checkpoint in {workdir}/checkpoints; train first '
                    '(--mode=train) or point --workdir at a trained run')
  state = s.checkpoints.restore(s.state)
  eval_data = datasets.load_arrays(s.builder, config.dataset.eval_split)
  metrics = evaluate(s.eval_step, state, eval_data, config, s.mesh)
  writer = MetricWriter(workdir, s.total_steps)
  writer.write(int(state.step), _eval_split_name(config.dataset.eval_split), metrics)
  writer.close()
  s.checkpoints.close()
  return metrics
