"""Saliency: a binary foreground map (label > 0 of a dense dataset); binary
cross-entropy of the fused output plus `aux_loss_weight` times each side output's
(U^2-Net's deep supervision, Qin et al. 2020, section 3.3, all weights 1); MAE and max
F-measure (dense_metrics.py); a PNG per evaluation."""

import jax
import jax.numpy as jnp
import optax

from train_lib.tasks import dense_metrics
from train_lib.tasks.dense import Dense, align, like


class Saliency(Dense):
  """Binary foreground maps: a pixel is salient where its label is an object's."""

  draws_saliency = True

  def _target(self, labels):
    labels = labels.astype(jnp.int32)
    return ((labels > 0) & (labels != self.config.ignore_label)).astype(jnp.float32)

  def _bce(self, logits, target):
    logits, target = align(logits, target[..., None])
    return optax.sigmoid_binary_cross_entropy(logits[..., 0], target[..., 0])

  def loss(self, logits, aux_logits, labels):
    target = self._target(labels)
    loss = self._bce(logits, target).mean()
    for aux in aux_logits:
      loss += self.config.aux_loss_weight * self._bce(like(aux, logits), target).mean()
    return loss

  def _fused(self, logits, labels):
    """Fused-output logits (N, H, W) and binary targets, aligned."""
    logits, target = align(logits, self._target(labels)[..., None])
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

  def num_outputs(self, class_names) -> tuple[int, str]:
    del class_names  # every object is foreground
    return 1, (
      f"task 'saliency' on dataset '{self.config.dataset.name}' has one output (foreground)"
    )

  def prediction(self, logits):
    return jax.nn.sigmoid(logits[..., 0])
