"""Dense prediction: metrics on hand-made cases, the ignore label, joint augmentation of
image and labels, the U-Net centre crop, deep supervision, and a run through main.py."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import read_metrics, run_main

from configs import default
from input_pipeline import dense_augment
from input_pipeline.errors import DataError
from train_lib import tasks
from train_lib.errors import UserError
from train_lib.tasks import dense_metrics


def _config(task='segmentation', num_classes=4):
  config = default.get_config()
  config.task = task
  config.dataset.num_classes = num_classes
  return config


def test_mean_iou_of_a_hand_made_confusion():
  # true:      0 0 0 1 1 2      C = [[2 1 0 0],   IoU 0: 2 / (3 + 2 - 2) = 2/3
  # predicted: 0 0 1 1 2 2           [0 1 1 0],       1: 1 / (2 + 2 - 1) = 1/3
  # class 3 occurs nowhere: no IoU    [0 0 1 0],       2: 1 / (1 + 2 - 1) = 1/2
  #                                   [0 0 0 0]]
  labels = jnp.array([[0, 0, 0, 1, 1, 2]])
  predictions = jnp.array([[0, 0, 1, 1, 2, 2]])
  confusion = jax.jit(dense_metrics.confusion_matrix, static_argnums=3)(
    labels, predictions, jnp.ones((1, 6)), 4
  )
  np.testing.assert_array_equal(confusion, [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
  m = dense_metrics.segmentation_metrics(confusion)
  np.testing.assert_allclose(m['iou'][:3], [2 / 3, 1 / 3, 1 / 2])
  assert np.isnan(m['iou'][3])
  assert m['mean_iou'] == pytest.approx(0.5)
  assert m['pixel_accuracy'] == pytest.approx(4 / 6)


def _logits_for(predictions, num_classes):
  return 5.0 * jax.nn.one_hot(jnp.asarray(predictions), num_classes)


def test_ignore_label_and_padding_count_nowhere():
  task = tasks.get_task(_config())
  labels = np.array([[[0, 1], [2, 255]], [[3, 3], [3, 3]]], np.uint8)
  predictions = np.array([[[0, 1], [1, 3]], [[0, 0], [0, 0]]])
  logits = _logits_for(predictions, 4)
  mask = jnp.array([1.0, 0.0])  # the second example is padding
  sums = jax.device_get(jax.jit(task.eval_sums)(logits, jnp.asarray(labels), mask))
  assert sums['count'] == 3
  np.testing.assert_array_equal(
    sums['confusion'], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
  )
  metrics = task.finalize(sums)
  assert metrics['pixel_accuracy'] == metrics['accuracy'] == pytest.approx(2 / 3)
  assert metrics['mean_iou'] == pytest.approx((1 + 1 / 2 + 0) / 3)
  # The loss neither sees nor gets a gradient from an ignored pixel.
  loss, grad = jax.jit(jax.value_and_grad(lambda z: task.loss(z, [], labels[:1])))(logits[:1])
  assert np.all(grad[0, 1, 1] == 0) and np.any(grad[0, 0, 0] != 0)
  z = np.asarray(logits[0]).reshape(4, 4)[:3]
  want = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(3), [0, 1, 2]])
  assert loss == pytest.approx(want)


def test_saliency_mae_and_max_f_by_hand():
  # Image 1: p = .9 .6 .4 .1, truth 1 0 1 0; MAE .35. Image 2: p = .8 everywhere, truth
  # all 1; MAE .2. Mean precision / recall over the two images at thresholds t/255:
  #   t <= 25: P (.5 + 1)/2, R 1 -> F .7959;  26..102: P (2/3 + 1)/2, R 1 -> .8667;
  #   103..153: P .75, R .75 -> .75;  154..204: P 1, R (.5 + 1)/2 -> 13/14 (the max);
  #   205..229: P .5, R .25 -> .40625; above: 0.
  p = jnp.array([[[0.9, 0.6], [0.4, 0.1]], [[0.8, 0.8], [0.8, 0.8]], [[1.0, 0.0], [1.0, 0.0]]])
  g = jnp.array([[[1, 0], [1, 0]], [[1, 1], [1, 1]], [[0, 1], [0, 1]]])
  sums = jax.jit(dense_metrics.saliency_sums)(p, g, jnp.array([1.0, 1.0, 0.0]))  # 3: pad
  m = dense_metrics.saliency_metrics(sums)
  assert m['mae'] == pytest.approx(0.275)
  assert m['max_f'] == pytest.approx(13 / 14)
  f = (1 + 0.3) * 0.5 * 0.25 / (0.3 * 0.5 + 0.25)
  assert f == pytest.approx(0.40625)  # the F-measure with beta^2 = 0.3, as above


def test_saliency_loss_sums_fused_and_side_outputs():
  config = _config('saliency', 1)
  config.aux_loss_weight = 1.0  # U^2-Net: every side output weighs as much as the fuse
  task = tasks.get_task(config)
  labels = jnp.array([[[0, 3], [255, 1]]], jnp.uint8)  # object labels -> 1; 255 -> 0
  target = np.array([[0, 1], [0, 1]], np.float64)
  rng = np.random.default_rng(0)
  fused, *sides = [rng.normal(size=(1, 2, 2, 1)) for _ in range(7)]

  def bce(z):
    z = z[0, ..., 0]
    return np.mean(np.log1p(np.exp(-z)) * target + np.log1p(np.exp(z)) * (1 - target))

  want = bce(fused) + sum(bce(s) for s in sides)
  got = jax.jit(task.loss)(
    jnp.asarray(fused, jnp.float32), [jnp.asarray(s, jnp.float32) for s in sides], labels
  )
  assert got == pytest.approx(want, rel=1e-5)


def test_valid_convolution_output_is_scored_on_the_label_centre():
  """The original U-Net's 388 outputs of a 572 input: the centre of the labels."""
  task = tasks.get_task(_config())
  labels = np.random.default_rng(0).integers(0, 4, (2, 8, 8)).astype(np.uint8)
  logits = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 4))
  centre = labels[:, 2:6, 2:6]
  z = np.asarray(logits, np.float64)
  picked = np.take_along_axis(z, centre[..., None].astype(int), -1)[..., 0]
  want = np.mean(np.log(np.exp(z).sum(-1)) - picked)
  loss = jax.jit(lambda z, y: task.loss(z, [], y))(logits, jnp.asarray(labels))
  assert loss == pytest.approx(want, rel=1e-5)
  sums = jax.jit(task.eval_sums)(logits, jnp.asarray(labels), jnp.ones(2))
  assert sums['count'] == 2 * 16


def _augment_config(scale, pad, flip):
  config = _config()
  config.input.image_size = 0
  config.input.scale_range = (scale, scale)
  config.input.crop_padding = pad
  config.input.random_flip = flip
  return config


def test_crop_and_flip_cut_image_and_mask_identically():
  """The image encodes its mask (value = 10 * label); after augmentation it still must."""
  rng = np.random.default_rng(0)
  mask = rng.integers(0, 5, (16, 12, 12)).astype(np.uint8)
  batch = {'image': (10 * mask)[..., None], 'label': mask}
  config = _augment_config(1.0, 3, True)
  augment = jax.jit(lambda b, k: dense_augment.train_inputs(b, k, config))
  x, labels = augment(batch, jax.random.PRNGKey(1))
  x, labels = np.asarray(x)[..., 0], np.asarray(labels)
  outside = labels == 255
  assert outside.any() and (~outside).any()
  np.testing.assert_allclose(np.where(outside, 0, 10 * labels), np.round(255 * x))
  # Each output is one of the 2 x 7 x 7 flipped or not, shifted crops of its input.
  flips = 0
  for m, got in zip(mask, labels):
    padded = np.pad(m, 3, constant_values=255)
    crops = [
      (f, c[y : y + 12, x0 : x0 + 12])
      for f, c in ((0, padded), (1, padded[:, ::-1]))
      for y in range(7)
      for x0 in range(7)
    ]
    matches = [f for f, c in crops if np.array_equal(c, got)]
    assert matches, 'not a crop or flipped crop of the input'
    flips += matches[0]
  assert 0 < flips < len(mask)  # both flipped and unflipped examples occur


def test_rescaling_samples_mask_by_nearest_neighbour_at_the_image_coordinates():
  blocks = np.kron(
    np.random.default_rng(1).integers(1, 5, (4, 4, 4)), np.ones((1, 6, 6), np.int64)
  ).astype(np.uint8)  # 24x24, 6x6 blocks
  batch = {'image': (50 * blocks)[..., None], 'label': blocks}
  config = _augment_config(2.0, 0, True)
  augment = jax.jit(lambda b, k: dense_augment.train_inputs(b, k, config))
  x, labels = augment(batch, jax.random.PRNGKey(2))
  x, labels = np.asarray(x)[..., 0], np.asarray(labels)
  assert set(np.unique(labels)) <= set(np.unique(blocks))  # no blended labels
  # Inside the blocks (away from edges, where bilinear blends) the two agree.
  agree = np.mean(np.isclose(255 * x, 50.0 * labels, atol=1e-3))
  assert agree > 0.7


def test_a_dataset_without_masks_or_classes_that_dont_match_are_user_errors(data_dir):
  from input_pipeline import datasets, feeds

  config = _config(num_classes=11)
  config.dataset.name, config.dataset.data_dir = 'digits', data_dir
  task = tasks.get_task(config)
  assert (task.labels, tasks.get_task(_config('classification')).labels) == ('mask', 'class')
  with pytest.raises(DataError, match='no segmentation_mask'):
    feeds.check_features(config, datasets.get_builder(config.dataset), labels=task.labels)
  config.dataset.name = 'digit_scenes'
  builder = datasets.get_builder(config.dataset)
  names = feeds.check_features(config, builder, labels=task.labels)
  task.check_classes(names)
  assert task.class_names == names and len(names) == 11
  config.dataset.num_classes = 10
  with pytest.raises(UserError, match="'digit_scenes' has 11 classes.*num_classes=11"):
    task.check_classes(names)
  config.task = 'saliency'
  with pytest.raises(UserError, match='one output.*--config.dataset.num_classes=1'):
    tasks.get_task(config).check_classes(names)
  config.input.train_crop = 'random_resized'
  with pytest.raises(DataError, match='no host crop.*train_crop=none'):
    feeds.choose_feed(config, builder, labels='mask')
  config.dataset.name = 'oxford_iiit_pet'
  with pytest.raises(DataError, match="'oxford_iiit_pet' is not prepared"):
    datasets.get_builder(config.dataset)
  config.task = 'keypoints'
  with pytest.raises(UserError, match='not implemented'):
    tasks.get_task(config)


def test_a_few_steps_through_main_write_mean_iou_and_a_picture(data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  result = run_main(
    '--config=configs/scenes_unet.py:smoke',
    f'--workdir={workdir}',
    f'--config.dataset.data_dir={data_dir}',
    '--config.num_train_steps=2',
  )
  assert result.returncode == 0, result.stderr[-3000:]
  test_rows = [r for r in read_metrics(workdir) if r['split'] == 'test']
  assert [r['step'] for r in test_rows] == [2]
  assert 0 <= test_rows[-1]['mean_iou'] <= 1
  assert test_rows[-1]['accuracy'] == test_rows[-1]['pixel_accuracy']
  assert 'iou/background' in test_rows[-1]
  with open(os.path.join(workdir, 'predictions', 'step_2.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
