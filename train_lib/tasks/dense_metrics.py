"""Dense-prediction metrics: sums made on the device per batch, finished on the host.

Sums add over batches (and over the examples of a padded, masked eval batch), so every
pixel of the test set counts exactly once whatever the batch size or device count.

- Segmentation: the confusion matrix C[true, predicted] of the labelled pixels (pixels
  with the ignore label count nowhere). Pixel accuracy = trace / total; IoU of class c =
  C[c, c] / (row c + column c - C[c, c]); mean IoU averages the classes that occur in
  the ground truth or the predictions (as PASCAL VOC's and mmsegmentation's nanmean).
- Saliency (Borji et al. 2015, "Salient object detection: a benchmark"): MAE is the mean
  absolute difference between the predicted probability and the binary ground truth,
  per image, averaged over images. For each threshold t/255, t = 0..255, a pixel is
  predicted salient if its probability is >= t/255; precision and recall are computed
  per image and averaged over images, F = (1 + b^2) P R / (b^2 P + R) with b^2 = 0.3,
  and max F is the largest F over the thresholds.
"""

import jax
import jax.numpy as jnp
import numpy as np

BETA2 = 0.3  # beta^2 of the F-measure: precision weighs more than recall
NUM_THRESHOLDS = 256


def confusion_matrix(labels, predictions, weights, num_classes: int):
  """int32 (C, C): summed `weights` (0 or 1) of pixels by (true, predicted) class."""
  index = labels.astype(jnp.int32) * num_classes + predictions.astype(jnp.int32)
  counts = jnp.bincount(
    index.reshape(-1),
    weights=weights.reshape(-1).astype(jnp.int32),
    length=num_classes * num_classes,
  )
  return counts.reshape(num_classes, num_classes)


def segmentation_metrics(confusion: np.ndarray) -> dict[str, float | np.ndarray]:
  """Pixel accuracy, per-class IoU (NaN for absent classes) and mean IoU."""
  confusion = np.asarray(confusion, np.float64)
  tp = np.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - tp
  with np.errstate(invalid='ignore', divide='ignore'):
    iou = np.where(union > 0, tp / union, np.nan)
  total = confusion.sum()
  return {
    'pixel_accuracy': float(tp.sum() / total) if total else 0.0,
    'iou': iou,
    'mean_iou': float(np.nanmean(iou)) if np.any(union > 0) else 0.0,
  }


def saliency_sums(probabilities, targets, mask):
  """Per-batch sums for MAE and max F.

  Args:
    probabilities: (N, H, W) predicted foreground probabilities in [0, 1].
    targets: (N, H, W) binary ground truth (0 or 1).
    mask: (N,) 1 for real examples, 0 for padding.

  Returns:
    {'images': count, 'abs_error': sum of per-image MAE, 'precision' and 'recall':
    (NUM_THRESHOLDS,) sums over images of the per-image values at each threshold}.
  """
  n = probabilities.shape[0]
  p = probabilities.reshape(n, -1).astype(jnp.float32)
  g = targets.reshape(n, -1).astype(jnp.float32)
  mae = jnp.mean(jnp.abs(p - g), axis=1)
  # Level q of a pixel is floor(255 p): p >= t/255 exactly when q >= t.
  level = jnp.clip(jnp.floor(p * (NUM_THRESHOLDS - 1)), 0, NUM_THRESHOLDS - 1)
  index = (jnp.arange(n)[:, None] * NUM_THRESHOLDS + level.astype(jnp.int32)).reshape(-1)
  hist = lambda w: jnp.bincount(  # noqa: E731
    index, weights=w.reshape(-1), length=n * NUM_THRESHOLDS
  ).reshape(n, NUM_THRESHOLDS)
  # Pixels at level >= t, by reversed cumulative sums of the level histograms.
  at_least = lambda h: jnp.cumsum(h[:, ::-1], axis=1)[:, ::-1]  # noqa: E731
  tp = at_least(hist(g))
  predicted = at_least(hist(jnp.ones_like(g)))
  positives = jnp.sum(g, axis=1, keepdims=True)
  precision = jnp.where(predicted > 0, tp / jnp.maximum(predicted, 1), 0.0)
  recall = jnp.where(positives > 0, tp / jnp.maximum(positives, 1), 0.0)
  m = mask.astype(jnp.float32)
  return {
    'images': jnp.sum(m),
    'abs_error': jnp.sum(mae * m),
    'precision': jnp.sum(precision * m[:, None], axis=0),
    'recall': jnp.sum(recall * m[:, None], axis=0),
  }


def saliency_metrics(sums) -> dict[str, float]:
  """MAE and max F-measure from the summed `saliency_sums` of a whole test set."""
  sums = jax.tree.map(lambda x: np.asarray(x, np.float64), sums)
  count = max(float(sums['images']), 1.0)
  precision, recall = sums['precision'] / count, sums['recall'] / count
  denominator = BETA2 * precision + recall
  with np.errstate(invalid='ignore', divide='ignore'):
    f = np.where(denominator > 0, (1 + BETA2) * precision * recall / denominator, 0.0)
  return {'mae': float(sums['abs_error'] / count), 'max_f': float(f.max())}
