"""Segmentation: a class per pixel; per-pixel softmax cross-entropy, pixels with
`config.ignore_label` left out; pixel accuracy, per-class IoU and mean IoU from a
confusion matrix (dense_metrics.py); a PNG of predictions per evaluation."""

import jax.numpy as jnp
import numpy as np
import optax

from train_lib.tasks import dense_metrics
from train_lib.tasks.classification import softmax_sums
from train_lib.tasks.dense import Dense, align, like


class Segmentation(Dense):
  """A class per pixel; `ignore_label` pixels count nowhere."""

  def _pixels(self, logits, labels):
    """Aligned logits, labels made valid indices, and the labelled-pixel weights."""
    logits, labels = align(logits, labels)
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
      loss += self.config.aux_loss_weight * self._cross_entropy(like(aux, logits), labels)
    return loss

  def train_sums(self, logits, labels):
    return softmax_sums(*self._pixels(logits, labels))

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

  def num_outputs(self, class_names) -> tuple[int, str]:
    n = len(class_names)
    return n, f"task 'segmentation' on dataset '{self.config.dataset.name}' has {n} classes"

  def prediction(self, logits):
    return jnp.argmax(logits, -1)
