"""Classification: one class per image; softmax cross-entropy (plus weighted auxiliary
heads, as GoogLeNet's); loss and accuracy."""

import jax.numpy as jnp
import ml_collections
import optax

from input_pipeline import preprocess
from train_lib.errors import UserError


def softmax_sums(logits, labels, weights):
  """Weighted sums of the cross-entropy and the correct predictions, and the weights' sum
  (the count): of examples, or of pixels (logits (..., C), labels and weights (...))."""
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return {
    'loss': jnp.sum(loss * weights),
    'correct': jnp.sum(correct * weights),
    'count': jnp.sum(weights),
  }


class Classification:
  """One class per image."""

  labels = 'class'  # what the input pipeline reads (input_pipeline/feeds.py)

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.class_names = ()

  # On the host, once the dataset is known.
  def check_classes(self, class_names) -> None:
    """Checks `dataset.num_classes` against the dataset's classes and keeps their names.

    Args:
      class_names: the names of the dataset's classes 0, 1, ...
        (`feeds.check_features`).

    Raises:
      UserError: the model would have another number of outputs than the task needs.
    """
    want, what = self.num_outputs(class_names)
    if self.config.dataset.num_classes != want:
      raise UserError(
        f'{what} but dataset.num_classes={self.config.dataset.num_classes}; set '
        f'--config.dataset.num_classes={want}'
      )
    self.class_names = tuple(class_names)

  def num_outputs(self, class_names) -> tuple[int, str]:
    """The number of model outputs the task needs, and why (for the error message)."""
    n = len(class_names)
    return n, f"dataset '{self.config.dataset.name}' has {n} classes"

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
    return softmax_sums(logits, labels, mask)

  # On the host.
  def finalize(self, totals) -> dict[str, float]:
    count = totals['count']
    return {'loss': totals['loss'] / count, 'accuracy': totals['correct'] / count}

  def write_pictures(self, model, state, data, step: int, workdir: str) -> None:
    """Dense tasks draw predictions; classification has nothing to draw."""
