"""What segmentation and saliency share: images with label maps, their inputs, the
alignment of outputs and labels, and the pictures.

Dense models return logits (N, H, W, C); a model whose output is smaller than its input
(the original U-Net's valid convolutions) is scored on the centre of the label map, and
a larger output is cut to the labels' size.
"""

import functools
import os

import jax
import jax.numpy as jnp

from input_pipeline import dense_augment
from models.layers import center_crop
from train_lib.tasks.classification import Classification

NUM_PICTURES = 6  # test examples drawn at each evaluation


def like(aux, logits):
  """Side-output logits resized (bilinear) to the main output's size where they differ."""
  if aux.shape[1:3] == logits.shape[1:3]:
    return aux.astype(jnp.float32)
  shape = (aux.shape[0], *logits.shape[1:3], aux.shape[3])
  return jax.image.resize(aux.astype(jnp.float32), shape, 'bilinear')


def align(logits, labels):
  """Logits and labels cut to their common centre (original U-Net: 388 of 572)."""
  h, w = min(logits.shape[1], labels.shape[1]), min(logits.shape[2], labels.shape[2])
  return center_crop(logits, h, w), center_crop(labels, h, w)


class Dense(Classification):
  """A label per pixel: images read with their masks, inputs augmented with the labels,
  pictures of the predictions. Subclasses give the loss, the metrics and `prediction`."""

  labels = 'mask'  # what the input pipeline reads (input_pipeline/feeds.py)
  draws_saliency = False  # pictures: class colours, or grey-level probabilities

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
    logits, labels = align(logits, labels)
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
    from train_lib.tasks import dense_pictures  # matplotlib: only where pictures are drawn

    path = os.path.join(workdir, 'predictions', f'step_{step}.png')
    dense_pictures.save_predictions(
      path,
      images,
      labels,
      predictions,
      self.class_names,
      saliency=self.draws_saliency,
      ignore_label=self.config.ignore_label,
      title=f'{self.config.model.name}, step {step}',
    )
