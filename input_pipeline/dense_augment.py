"""Preprocessing and augmentation of images with per-pixel labels, in JAX on the device.

Every geometric change is applied to the image and its label map alike: the image is
sampled bilinearly, the labels by nearest neighbour (a label is never blended), at the
same source coordinates. Pixels that come from outside the image are black in the image
and `ignore_label` in the labels, so they count in neither loss nor metrics.
"""

import jax
import jax.numpy as jnp
import ml_collections

from input_pipeline import preprocess


def resize(images, labels, input_config: ml_collections.ConfigDict):
  """uint8 images NHWC -> float [0, 1] and labels NHW, both at `image_size` (if set).

  Grey images given to a model of `channels` > 1 repeat their channel (as
  torchvision's `Grayscale(num_output_channels=3)`).
  """
  x = images.astype(jnp.float32) / 255.0
  if x.shape[-1] == 1 and input_config.channels > 1:
    x = jnp.repeat(x, input_config.channels, axis=-1)
  size = input_config.image_size
  n, h, w, c = x.shape
  if size and (h, w) != (size, size):
    x = jax.image.resize(x, (n, size, size, c), method=input_config.resize_method, antialias=False)
    labels = jax.image.resize(labels.astype(jnp.float32), (n, size, size), method='nearest').astype(
      labels.dtype
    )
  return x, labels


def finish(x, input_config: ml_collections.ConfigDict, dtype=jnp.float32):
  """[0, 1] images -> the model's input: padded to `pad_to`, normalized, in `dtype`.

  `pad_mode` 'reflect' mirrors the image into the padding (U-Net's overlap-tile input,
  Ronneberger et al. 2015, Fig. 2); 'constant' pads with black.
  """
  return preprocess.pad_and_normalize(x, input_config, dtype, input_config.pad_mode)


def _window(rng, scale, pad, size):
  """Random integer offset of a `size` window in a scaled side of `scale * size`.

  The window stays inside the scaled side padded by `pad`; where that is smaller than
  the window, the scaled side lies inside the window instead.
  """
  slack = scale * size + 2 * pad - size
  lo = -pad + jnp.minimum(0.0, slack)
  choices = jnp.floor(jnp.abs(slack)) + 1  # whole-pixel positions lo, lo + 1, ...
  return lo + jnp.floor(jax.random.uniform(rng, ()) * choices)


def _sampling_matrix(src, size: int, nearest: bool):
  """(len(src), size) weights that sample a side of `size` pixels at positions `src`.

  Bilinear: two taps per row; nearest: one. Taps outside the side get no weight, so a
  row that falls wholly outside is zero.
  """
  if nearest:
    return jax.nn.one_hot(jnp.round(src).astype(jnp.int32), size)
  lo = jnp.floor(src)
  frac = (src - lo)[:, None]
  tap = lo.astype(jnp.int32)
  return jax.nn.one_hot(tap, size) * (1 - frac) + jax.nn.one_hot(tap + 1, size) * frac


def augment(x, labels, rng, input_config: ml_collections.ConfigDict, ignore_label: int):
  """Random scale, crop and horizontal flip, the same for each image and its labels.

  Each example is rescaled by a factor drawn uniformly from `scale_range`, padded by
  `crop_padding` pixels, cropped back to its size at a random integer offset, and
  flipped left-right with probability 1/2 if `random_flip`. With scale 1 the crop moves
  whole pixels, so image and labels are cut exactly. The map is separable, so each
  example is sampled by two small matrices (rows, columns): out = R_y . in . R_x^T.

  Args:
    x: float [0, 1] images (N, H, W, C).
    labels: integer label maps (N, H, W).
    rng: a PRNG key for the batch.
    input_config: `config.input` (scale_range, crop_padding, random_flip).
    ignore_label: the label of pixels that come from outside the image.

  Returns:
    (images, labels) of the same shapes and dtypes.
  """
  lo, hi = input_config.scale_range
  pad, flip = input_config.crop_padding, input_config.random_flip
  if (lo, hi) == (1.0, 1.0) and not pad and not flip:
    return x, labels
  n, h, w, _ = x.shape
  ys, xs = jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32)

  def matrices(key):
    k_scale, k_y, k_x, k_flip = jax.random.split(key, 4)
    s = jax.random.uniform(k_scale, (), minval=lo, maxval=hi)
    oy, ox = _window(k_y, s, pad, h), _window(k_x, s, pad, w)
    cols = jnp.where(jax.random.bernoulli(k_flip), xs[::-1], xs) if flip else xs
    # Output pixel (i, j) shows the scaled image's pixel (i + oy, j + ox); half-pixel
    # centres map it back to the source.
    src_y, src_x = (ys + oy + 0.5) / s - 0.5, (cols + ox + 0.5) / s - 0.5
    return tuple(
      _sampling_matrix(src, size, nearest)
      for nearest in (False, True)
      for src, size in ((src_y, h), (src_x, w))
    )

  ry, rx, ny, nx = jax.vmap(matrices)(jax.random.split(rng, n))
  exact = jax.lax.Precision.HIGHEST  # label values and pixels pass through unrounded
  image = jnp.einsum('nih,nhwc,njw->nijc', ry, x, rx, precision=exact)
  picked = jnp.einsum('nih,nhw,njw->nij', ny, labels.astype(jnp.float32), nx, precision=exact)
  inside = (ny.sum(-1)[:, :, None] * nx.sum(-1)[:, None, :]) > 0.5
  label = jnp.where(inside, jnp.round(picked), ignore_label).astype(labels.dtype)
  return image.astype(x.dtype), label


def train_inputs(batch, rng, config: ml_collections.ConfigDict, dtype=jnp.float32):
  """A training batch's model input and augmented label maps (N, H, W)."""
  x, labels = resize(batch['image'], batch['label'], config.input)
  x, labels = augment(x, labels, rng, config.input, config.ignore_label)
  return finish(x, config.input, dtype), labels


def eval_inputs(batch, config: ml_collections.ConfigDict, dtype=jnp.float32):
  """An eval batch's model input, label maps, and [0, 1] images (for pictures)."""
  x, labels = resize(batch['image'], batch['label'], config.input)
  return finish(x, config.input, dtype), labels, x
