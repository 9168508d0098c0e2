"""The training library end to end on the digits: data parallelism, eval, resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
from helpers import read_metrics

from input_pipeline import batches, datasets, preprocess
from train_lib import setup, sharding, steps, train


def test_one_and_eight_devices_give_the_same_losses(digits_config, tmp_path):
  assert jax.device_count() == 8
  train.train_and_evaluate(digits_config, str(tmp_path / 'one'), devices=jax.devices()[:1])
  train.train_and_evaluate(digits_config, str(tmp_path / 'eight'))
  one, eight = read_metrics(str(tmp_path / 'one')), read_metrics(str(tmp_path / 'eight'))
  loss = lambda rows: [r['loss'] for r in rows if r['split'] == 'train']  # noqa: E731
  assert len(loss(one)) == 8
  np.testing.assert_allclose(loss(one), loss(eight), atol=1e-4)
  np.testing.assert_allclose(one[-1]['accuracy'], eight[-1]['accuracy'], atol=1e-6)


def test_eval_counts_every_example_once(digits_config):
  """360 test images, eval batch 64 on 8 devices: the last batch is padded and masked."""
  config = digits_config
  mesh = sharding.create_mesh()
  builder = datasets.get_builder(config.dataset)
  data = datasets.load_arrays(builder, 'test')
  s = setup.create(config, tx=optax.sgd(0.1))
  model, state = s.model, s.state
  _, eval_step = steps.compile_steps(s)
  metrics = train.evaluate(eval_step, state, data, config, mesh, s.task)
  # Reference: the same model on all 360 images at once, on the host.
  images = preprocess.normalize(jnp.asarray(data['image']), config.input)
  logits = model.apply({'params': state.params}, images, train=False)
  labels = data['label']
  want_acc = float(np.mean(np.argmax(logits, -1) == labels))
  logp = jax.nn.log_softmax(logits)
  want_loss = float(-np.mean(np.take_along_axis(np.asarray(logp), labels[:, None], 1)))
  np.testing.assert_allclose(metrics['accuracy'], want_acc, atol=1e-6)
  np.testing.assert_allclose(metrics['loss'], want_loss, rtol=1e-5)
  assert len(data['label']) % config.eval_batch_size != 0


def test_resume_continues_exactly(digits_config, tmp_path):
  """A run stopped after 4 steps and continued equals one that ran 8 steps at once."""
  config = digits_config
  config.lr_schedule = 'constant'  # the schedule must not depend on the stop
  full = str(tmp_path / 'full')
  train.train_and_evaluate(config, full)
  split = str(tmp_path / 'split')
  config.num_train_steps = 4
  train.train_and_evaluate(config, split)
  config.num_train_steps = 8
  train.train_and_evaluate(config, split)
  rows_full = [r for r in read_metrics(full) if r['split'] == 'train']
  rows_split = [r for r in read_metrics(split) if r['split'] == 'train']
  assert [r['step'] for r in rows_split] == list(range(1, 9))
  np.testing.assert_allclose(
    [r['loss'] for r in rows_split], [r['loss'] for r in rows_full], rtol=1e-6
  )
  assert read_metrics(full)[-1] == read_metrics(split)[-1]


def test_eval_mode_restores_newest(digits_config, tmp_path, capsys):
  """Also: training prints the resolved schedule and records it in DIR/config.json."""
  workdir = str(tmp_path / 'run')
  final = train.train_and_evaluate(digits_config, workdir)
  lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('schedule:')]
  # 1,437 training digits: 22 batches of 64 per epoch; the recipe's lr 0.05 as given.
  want = 'schedule: steps=8 epochs=0.363636 batch=64 peak_lr=0.05 warmup_steps=0 boundaries='
  assert lines == [want]
  with open(f'{workdir}/config.json') as f:
    assert json.load(f)['schedule'] == {
      'steps': 8,
      'epochs': 8 / 22,
      'batch': 64,
      'peak_lr': 0.05,
      'warmup_steps': 0,
      'boundaries': [],
      'steps_per_epoch': 22,
    }
  rows = read_metrics(workdir)
  again = train.evaluate_checkpoint(digits_config, workdir)  # read-only: no metrics row
  np.testing.assert_allclose(again['accuracy'], final['accuracy'])
  assert read_metrics(workdir) == rows
  with open(f'{workdir}/eval_8.json') as f:
    assert json.load(f)['step'] == 8


def test_train_step_compiles_once(digits_config):
  config = digits_config
  mesh = sharding.create_mesh()
  s = setup.create(config, tx=optax.sgd(0.1))
  state = s.state
  train_step, _ = steps.compile_steps(s)
  builder = datasets.get_builder(config.dataset)
  data = datasets.load_arrays(builder, 'train')
  it = batches.prefetch_to_device(batches.train_batches(data, 64, 0), sharding.batch_sharding(mesh))
  for _ in range(3):
    state, _ = train_step(state, next(it))
  assert train_step._cache_size() == 1
