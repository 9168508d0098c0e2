"""The two feeds: the same batches for the same (seed, step), exact resume, and the
processes of a (simulated) 2-process run reading disjoint examples."""

import functools
import re

import fake_tfds
import jax
import numpy as np
import optax
import pytest
from helpers import read_metrics

from configs import digits_lenet5
from input_pipeline import batches, datasets, preprocess, resident, stream
from models import registry
from train_lib import setup, sharding, steps, train


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
  """cifar10 and imagenet2012 with 40 train and 12 test / validation examples."""
  return fake_tfds.prepare_tiny(tmp_path_factory)


def _builder(name, data_dir):
  config = digits_lenet5.get_config()
  config.dataset.name, config.dataset.data_dir = name, data_dir
  return datasets.get_builder(config.dataset)


def test_device_resident_batches_are_the_host_batches_and_resume():
  """Gathered in the step from the on-device split: host order, no communication."""
  n, batch = 50, 16  # 3 steps per epoch
  data = {
    'image': np.random.default_rng(0).integers(0, 256, (n, 4, 4, 1), np.uint8),
    'label': np.arange(n, dtype=np.int32),
  }
  mesh = sharding.create_mesh()
  take = jax.jit(
    functools.partial(
      resident.take_batch, batch_size=batch, batch_sharding=sharding.batch_sharding(mesh)
    )
  )
  host = batches.train_batches(data, batch, seed=5)
  inputs = resident.step_inputs(data, batch, 5, 0, mesh)
  gathered = []
  for step in range(8):  # three epochs
    got = take(*next(inputs), step)
    want = next(host)
    assert got['image'].sharding.is_equivalent_to(sharding.batch_sharding(mesh), 4)
    np.testing.assert_array_equal(got['label'], want['label'])
    np.testing.assert_array_equal(got['image'], want['image'])
    gathered.append(np.asarray(got['label']))
  resumed = resident.step_inputs(data, batch, 5, 4, mesh)  # from step 4, mid-epoch
  for step in range(4, 8):
    np.testing.assert_array_equal(take(*next(resumed), step)['label'], gathered[step])
  # Each device gathers its rows from its own copy: no collective in the program.
  hlo = take.lower(*next(resumed), 0).compile().as_text()
  assert not re.search(r'all-gather|all-reduce|all-to-all|collective-permute', hlo)


def test_two_processes_read_disjoint_shards_and_evaluate_each_example_once(tiny_dir):
  builder = _builder('cifar10', tiny_dir)
  config = digits_lenet5.get_config().input
  seen, evaluated = [], []
  for process in range(2):
    train_batches = stream.as_numpy(
      stream.train_dataset(
        builder, 'train', config, 8, seed=0, process_index=process, process_count=2
      )
    )
    epoch = [fake_tfds.index(next(train_batches)['image']) for _ in range(5)]
    ids = np.concatenate(epoch)  # local batch 4: 5 batches are the 20 of the shard
    assert len(set(ids.tolist())) == 20
    seen.append(set(ids.tolist()))
    for b in stream.as_numpy(
      stream.eval_dataset(builder, 'test', config, 8, process_index=process, process_count=2)
    ):
      assert b['image'].shape == (4, 32, 32, 3)
      evaluated += (fake_tfds.index(b['image'])[b['mask'] > 0] + 1000).tolist()
  assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(40))
  assert sorted(evaluated) == list(range(1000, 1012))  # each test example once


def test_streamed_batches_are_a_function_of_seed_and_step(tiny_dir, monkeypatch):
  """Random resized crops, 40 images in 5 blocks read in a new order each epoch through a
  small shuffle buffer, batch 8: epochs of 5 steps; resume mid-epoch."""
  monkeypatch.setattr(stream, 'BLOCK', 8)
  builder = _builder('imagenet2012', tiny_dir)
  config = digits_lenet5.get_config().input
  config.image_size, config.train_crop, config.shuffle_buffer = 24, 'random_resized', 4

  def run(start, seed=0):
    return stream.as_numpy(stream.train_dataset(builder, 'train', config, 8, seed, start))

  full = run(0)
  first = [next(full) for _ in range(12)]
  for start in (3, 7):
    resumed = run(start)
    for step in range(start, 12):
      got = next(resumed)
      np.testing.assert_array_equal(got['image'], first[step]['image'])
      np.testing.assert_array_equal(got['label'], first[step]['label'])
  epochs = [np.concatenate([b['label'] for b in first[e * 5 : e * 5 + 5]]) for e in (0, 1)]
  assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(40))  # labels name images
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
  assert not np.array_equal(next(run(0, seed=1))['label'], first[0]['label'])


def test_ten_crop_evaluation_averages_the_logits_of_the_views(tiny_dir):
  builder = _builder('imagenet2012', tiny_dir)
  config = digits_lenet5.get_config()
  config.model.name, config.input.channels = 'lenet5_modern', 3
  config.input.image_size, config.input.eval_resize = 32, 36
  config.input.eval_crop = 'ten_crop'
  eval_batches = list(stream.as_numpy(stream.eval_dataset(builder, 'validation', config.input, 8)))
  again = list(stream.as_numpy(stream.eval_dataset(builder, 'validation', config.input, 8)))
  for a, b in zip(eval_batches, again):  # evaluation is deterministic
    np.testing.assert_array_equal(a['image'], b['image'])
  model = registry.create_model(config.model, num_classes=1000)
  s = setup.create(config, model=model, tx=optax.sgd(0.1))
  state = s.state
  _, eval_step = steps.compile_steps(s)
  metrics = train.evaluate(eval_step, state, lambda: iter(eval_batches), config, s.mesh, s.task)
  # Reference: each view through the model on the host, logits averaged.
  images = np.concatenate([b['image'][b['mask'] > 0] for b in eval_batches])
  labels = np.concatenate([b['label'][b['mask'] > 0] for b in eval_batches])
  assert images.shape == (12, 10, 32, 32, 3)
  apply = jax.jit(
    lambda params, x: model.apply(
      {'params': params}, preprocess.normalize(x, config.input), train=False
    )
  )
  logits = np.asarray(apply(state.params, images.reshape(120, 32, 32, 3)))
  logits = logits.reshape(12, 10, 1000).mean(1)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  np.testing.assert_allclose(metrics['loss'], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics['accuracy'], np.mean(logits.argmax(-1) == labels))


def test_streamed_run_resumes_exactly(tiny_dir, tmp_path):
  """The train loop on the host-streaming feed: 4 steps = 2 steps, stop, 2 more."""
  config = digits_lenet5.get_config()
  config.dataset.name, config.dataset.data_dir = 'imagenet2012', tiny_dir
  config.dataset.eval_split, config.dataset.num_classes = 'validation', 1000
  config.model.name, config.input.channels, config.input.mean = 'lenet5_modern', 3, (0.5,)
  config.input.train_crop, config.input.eval_crop = 'random_resized', 'center'
  config.input.eval_resize, config.input.random_flip = 36, True
  config.batch_size = config.eval_batch_size = 8
  config.lr_schedule, config.num_train_steps = 'constant', 4
  config.log_every_steps = 1
  config.eval_every_steps = config.checkpoint_every_steps = 4
  train.train_and_evaluate(config, str(tmp_path / 'full'))
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(tmp_path / 'split'))
  config.num_train_steps = 4
  train.train_and_evaluate(config, str(tmp_path / 'split'))
  full, split = read_metrics(str(tmp_path / 'full')), read_metrics(str(tmp_path / 'split'))
  loss = lambda rows: [r['loss'] for r in rows if r['split'] == 'train']  # noqa: E731
  assert len(loss(full)) == 4 and loss(full) == loss(split)
  assert full[-1] == split[-1] and full[-1]['split'] == 'validation'
