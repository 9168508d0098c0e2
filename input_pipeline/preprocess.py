"""Preprocessing and augmentation in JAX, run inside the compiled step on the device.

Batches travel host -> device as uint8; converting, resizing, normalizing and augmenting
them on the device keeps the transfer small and the host idle.
"""

import jax
import jax.numpy as jnp
import ml_collections


def normalize(images, input_config: ml_collections.ConfigDict, dtype=jnp.float32):
  """uint8 NHWC -> float: resized to `image_size` (x `image_width` when set), padded to
  `pad_to`, normalized.

  Padding (MNIST 28 -> 32 for LeNet-5) is black, centred.
  """
  x = images.astype(jnp.float32) / 255.0
  size = input_config.image_size
  width = input_config.image_width or size
  if size and (x.shape[1], x.shape[2]) != (size, width):
    x = jax.image.resize(
      x, (x.shape[0], size, width, x.shape[3]), method=input_config.resize_method, antialias=False
    )
  return pad_and_normalize(x, input_config, dtype)


def pad_and_normalize(x, input_config: ml_collections.ConfigDict, dtype, pad_mode='constant'):
  """[0, 1] float NHWC -> padded (centred) to `pad_to` where set, normalized, in `dtype`.

  `pad_mode` is jnp.pad's: 'constant' pads with black.
  """
  if input_config.pad_to:
    dh, dw = input_config.pad_to - x.shape[1], input_config.pad_to - x.shape[2]
    x = jnp.pad(x, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)), pad_mode)
  mean = jnp.asarray(input_config.mean, jnp.float32)
  std = jnp.asarray(input_config.std, jnp.float32)
  return ((x - mean) / std).astype(dtype)


def augment(images, rng, input_config: ml_collections.ConfigDict):
  """Random crop after zero padding and random horizontal flip, per example.

  Args:
    images: float NHWC batch (already normalized, so the padding is the mean).
    rng: a PRNG key for this batch.
    input_config: `config.input` (crop_padding, random_flip).

  Returns:
    The augmented batch, same shape.
  """
  n, h, w, _ = images.shape
  crop_rng, flip_rng = jax.random.split(rng)
  pad = input_config.crop_padding
  if pad:
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(crop_rng, (n, 2), 0, 2 * pad + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(  # noqa: E731
      img, (o[0], o[1], 0), (h, w, img.shape[-1])
    )
    images = jax.vmap(crop)(padded, offsets)
  if input_config.random_flip:
    flip = jax.random.bernoulli(flip_rng, 0.5, (n, 1, 1, 1))
    images = jnp.where(flip, images[:, :, ::-1, :], images)
  return images


def model_input_shape(
  input_config: ml_collections.ConfigDict, stored_shape=None
) -> tuple[int, int, int]:
  """(height, width, channels) that `normalize` produces for the model.

  Args:
    input_config: `config.input`.
    stored_shape: the dataset's image shape, needed only when neither `image_size` nor
      `pad_to` fixes the size.
  """
  if input_config.pad_to:
    return (input_config.pad_to, input_config.pad_to, input_config.channels)
  if input_config.image_size:
    return (
      input_config.image_size,
      input_config.image_width or input_config.image_size,
      input_config.channels,
    )
  return (stored_shape[0], stored_shape[1], input_config.channels)
