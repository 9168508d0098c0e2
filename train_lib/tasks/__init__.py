"""Tasks: what a run optimises, measures and draws; the loop (train.py, steps.py) is one.

`config.task` picks one:
- 'classification': one label per image; softmax cross-entropy (plus weighted auxiliary
  heads, as GoogLeNet's); loss and accuracy.
- 'segmentation': a label per pixel; per-pixel softmax cross-entropy, pixels with
  `config.ignore_label` left out; pixel accuracy, per-class IoU and mean IoU from a
  confusion matrix (train_lib/tasks/dense_metrics.py); a PNG of predictions per evaluation.
- 'saliency': a binary foreground map (label > 0 of a dense dataset); binary
  cross-entropy of the fused output plus `aux_loss_weight` times each side output's
  (U^2-Net's deep supervision, Qin et al. 2020, section 3.3, all weights 1); MAE and max
  F-measure; a PNG per evaluation.
- 'keypoints': reserved (pose heatmaps).

A task supplies: the model inputs and targets of a batch (`train_inputs`,
`eval_inputs`), the loss, the per-batch metric sums made on the device (`train_sums`,
`eval_sums`; train sums always hold loss, correct and count), their finalisation on the
host, and the pictures. Dense models return logits (N, H, W, C); a model whose output is
smaller than its input (the original U-Net's valid convolutions) is scored on the
centre of the label map, and a larger output is cut to the labels' size.
"""

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from input_pipeline import dense_augment, preprocess
from train_lib.errors import UserError
from train_lib.tasks import dense_metrics

TASKS = ('classification', 'segmentation', 'saliency')
RESERVED = ('keypoints',)
NUM_PICTURES = 6  # test examples drawn at each evaluation


def get_task(config: ml_collections.ConfigDict):
  """The task object of `config.task`."""
  if config.task in RESERVED:
    raise UserError(
      f"task '{config.task}' is not implemented yet; valid: {', '.join(TASKS)} (set --config.task)"
    )
  if config.task not in TASKS:
    raise UserError(f"unknown task '{config.task}'; valid: {', '.join(TASKS)} (set --config.task)")
  return {'classification': Classification, 'segmentation': Segmentation, 'saliency': Saliency}[
    config.task
  ](config)


class Classification:
  """One class per image."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.class_names = ()

  # Data (on the host; TensorFlow is imported only when data is read).
  def check_features(self, builder) -> None:
    from input_pipeline import datasets

    datasets.check_features(builder, self.config)

  def load_arrays(self, builder, split: str) -> dict[str, np.ndarray]:
    from input_pipeline import datasets

    return datasets.load_arrays(builder, split)

  # On the device, inside the compiled steps.
  def train_inputs(self, batch, rng, dtype):
    images = preprocess.normalize(batch['image'], self.config.input, dtype)
    return preprocess.augment(images, rng, self.config.input), batch['label']

  def eval_inputs(self, batch, dtype):
    return preprocess.normalize(batch['image'], self.config.input, dtype), batch['label']

  def loss(self, logits, aux_logits, labels):
    """Mean cross-entropy, plus `aux_loss_weight` times each auxiliary head's."""
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    for aux in aux_logits:
      loss += (
        self.config.aux_loss_weight
        * optax.softmax_cross_entropy_with_integer_labels(aux.astype(jnp.float32), labels).mean()
      )
    return loss

  def train_sums(self, logits, labels):
    return self.eval_sums(logits, labels, jnp.ones_like(labels, jnp.float32))

  def eval_sums(self, logits, labels, mask):
    """Masked sums: summed loss, correct predictions, number of examples."""
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    return {
      'loss': jnp.sum(loss * mask),
      'correct': jnp.sum(correct * mask),
      'count': jnp.sum(mask),
    }

  # On the host.
  def finalize(self, totals) -> dict[str, float]:
    count = totals['count']
    return {'loss': totals['loss'] / count, 'accuracy': totals['correct'] / count}

  def write_pictures(self, model, state, data, step: int, workdir: str) -> None:
    """Dense tasks draw predictions; classification has nothing to draw."""


def center_crop(x, height: int, width: int):
  """The centre (height, width) of x's axes 1 and 2 (a no-op where they are smaller)."""
  dh, dw = max(0, x.shape[1] - height), max(0, x.shape[2] - width)
  return x[
    :, dh // 2 : dh // 2 + min(height, x.shape[1]), dw // 2 : dw // 2 + min(width, x.shape[2])
  ]


def _like(aux, logits):
  """Side-output logits resized (bilinear) to the main output's size where they differ."""
  if aux.shape[1:3] == logits.shape[1:3]:
    return aux.astype(jnp.float32)
  shape = (aux.shape[0], *logits.shape[1:3], aux.shape[3])
  return jax.image.resize(aux.astype(jnp.float32), shape, 'bilinear')


def _align(logits, labels):
  """Logits and labels cut to their common centre (original U-Net: 388 of 572)."""
  h, w = min(logits.shape[1], labels.shape[1]), min(logits.shape[2], labels.shape[2])
  return center_crop(logits, h, w), center_crop(labels, h, w)


class _Dense(Classification):
  """What segmentation and saliency share: data with masks, inputs, pictures."""

  def check_features(self, builder) -> None:
    from input_pipeline import dense_data

    self.class_names = dense_data.check_features(builder, self.config)

  def load_arrays(self, builder, split: str) -> dict[str, np.ndarray]:
    from input_pipeline import dense_data

    return dense_data.load_arrays(builder, split, self.config)

  def train_inputs(self, batch, rng, dtype):
    return dense_augment.train_inputs(batch, rng, self.config, dtype)

  def eval_inputs(self, batch, dtype):
    return dense_augment.eval_inputs(batch, self.config, dtype)[:2]

  def prediction(self, logits):
    """The picture of logits (N, H, W, C): class indices or probabilities."""
    raise NotImplementedError

  def predict(self, state, batch, *, model):
    """[0, 1] images, labels and predictions, all cut to the model's output size."""
    images, labels, unit_images = dense_augment.eval_inputs(batch, self.config, model.dtype)
    variables = {'params': state.params}
    if state.batch_stats:
      variables['batch_stats'] = state.batch_stats
    logits = model.apply(variables, images, train=False).astype(jnp.float32)
    logits, labels = _align(logits, labels)
    unit_images = center_crop(unit_images, logits.shape[1], logits.shape[2])
    return unit_images, labels, self.prediction(logits)

  def write_pictures(self, model, state, data, step: int, workdir: str) -> None:
    """Draws the first NUM_PICTURES test examples to DIR/predictions/step_<N>.png.

    Every process computes the predictions (one program on the global state); process
    0 draws them.
    """
    if not hasattr(self, '_predict'):
      self._predict = jax.jit(functools.partial(self.predict, model=model))
    k = min(NUM_PICTURES, len(data['label']))
    batch = {'image': data['image'][:k], 'label': data['label'][:k]}
    images, labels, predictions = jax.device_get(self._predict(state, batch))
    if jax.process_index() != 0:
      return
    from train_lib.tasks import dense_pictures

    path = os.path.join(workdir, 'predictions', f'step_{step}.png')
    dense_pictures.save_predictions(
      path,
      images,
      labels,
      predictions,
      self.class_names,
      saliency=self.config.task == 'saliency',
      ignore_label=self.config.ignore_label,
      title=f'{self.config.model.name}, step {step}',
    )


class Segmentation(_Dense):
  """A class per pixel; `ignore_label` pixels count nowhere."""

  def _pixels(self, logits, labels):
    """Aligned logits, labels made valid indices, and the labelled-pixel weights."""
    logits, labels = _align(logits, labels)
    labels = labels.astype(jnp.int32)
    valid = labels != self.config.ignore_label
    return logits, jnp.where(valid, labels, 0), valid.astype(jnp.float32)

  def _cross_entropy(self, logits, labels):
    """Mean over the labelled pixels (0 if there are none)."""
    logits, labels, valid = self._pixels(logits, labels)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(loss * valid) / jnp.maximum(jnp.sum(valid), 1.0)

  def loss(self, logits, aux_logits, labels):
    loss = self._cross_entropy(logits, labels)
    for aux in aux_logits:
      loss += self.config.aux_loss_weight * self._cross_entropy(_like(aux, logits), labels)
    return loss

  def train_sums(self, logits, labels):
    logits, labels, valid = self._pixels(logits, labels)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    return {
      'loss': jnp.sum(loss * valid),
      'correct': jnp.sum(correct * valid),
      'count': jnp.sum(valid),
    }

  def eval_sums(self, logits, labels, mask):
    logits, labels, valid = self._pixels(logits, labels)
    weights = valid * mask[:, None, None]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    confusion = dense_metrics.confusion_matrix(
      labels, jnp.argmax(logits, -1), weights, self.config.dataset.num_classes
    )
    return {'loss': jnp.sum(loss * weights), 'count': jnp.sum(weights), 'confusion': confusion}

  def finalize(self, totals) -> dict[str, float]:
    m = dense_metrics.segmentation_metrics(totals['confusion'])
    metrics = {
      'loss': float(totals['loss'] / max(float(totals['count']), 1.0)),
      'accuracy': m['pixel_accuracy'],
      'pixel_accuracy': m['pixel_accuracy'],
      'mean_iou': m['mean_iou'],
    }
    names = self.class_names or tuple(str(c) for c in range(len(m['iou'])))
    for name, iou in zip(names, m['iou']):
      if not np.isnan(iou):  # a class in neither labels nor predictions has no IoU
        metrics[f'iou/{name.replace("/", "_").replace(" ", "_")}'] = float(iou)
    return metrics

  def prediction(self, logits):
    return jnp.argmax(logits, -1)


class Saliency(_Dense):
  """Binary foreground maps: a pixel is salient where its label is an object's."""

  def _target(self, labels):
    labels = labels.astype(jnp.int32)
    return ((labels > 0) & (labels != self.config.ignore_label)).astype(jnp.float32)

  def _bce(self, logits, target):
    logits, target = _align(logits, target[..., None])
    return optax.sigmoid_binary_cross_entropy(logits[..., 0], target[..., 0])

  def loss(self, logits, aux_logits, labels):
    target = self._target(labels)
    loss = self._bce(logits, target).mean()
    for aux in aux_logits:
      loss += self.config.aux_loss_weight * self._bce(_like(aux, logits), target).mean()
    return loss

  def _fused(self, logits, labels):
    """Fused-output logits (N, H, W) and binary targets, aligned."""
    logits, target = _align(logits, self._target(labels)[..., None])
    return logits[..., 0], target[..., 0]

  def train_sums(self, logits, labels):
    logits, target = self._fused(logits, labels)
    loss = optax.sigmoid_binary_cross_entropy(logits, target)
    correct = ((logits > 0) == (target > 0.5)).astype(jnp.float32)
    return {
      'loss': jnp.sum(loss),
      'correct': jnp.sum(correct),
      'count': jnp.asarray(loss.size, jnp.float32),
    }

  def eval_sums(self, logits, labels, mask):
    logits, target = self._fused(logits, labels)
    pixels = mask[:, None, None] * jnp.ones_like(target)
    loss = optax.sigmoid_binary_cross_entropy(logits, target)
    correct = ((logits > 0) == (target > 0.5)).astype(jnp.float32)
    return {
      'loss': jnp.sum(loss * pixels),
      'correct': jnp.sum(correct * pixels),
      'count': jnp.sum(pixels),
      **dense_metrics.saliency_sums(jax.nn.sigmoid(logits), target, mask),
    }

  def finalize(self, totals) -> dict[str, float]:
    count = max(float(totals['count']), 1.0)
    accuracy = float(totals['correct'] / count)
    return {
      'loss': float(totals['loss'] / count),
      'accuracy': accuracy,
      **dense_metrics.saliency_metrics(
        {k: totals[k] for k in ('images', 'abs_error', 'precision', 'recall')}
      ),
    }

  def prediction(self, logits):
    return jax.nn.sigmoid(logits[..., 0])
