"""Decoding and cropping of encoded images on the host, in TensorFlow (tf.data maps).

The ImageNet recipes crop images of every size to the model's square input; done while
decoding, the JPEG decoder skips what the crop leaves out (`decode_and_crop_jpeg`).
Randomness is stateless: each example's crop is a function of its `seed` (a [2] int64
tensor), so a resumed run crops as an uninterrupted one did. Outputs are uint8; the
device normalizes them (input_pipeline/preprocess.py).

- `random_resized_crop`: Inception's (Szegedy et al. 2014, section 6; torchvision's
  RandomResizedCrop): a crop of 8%-100% of the image area with aspect ratio in [3/4, 4/3],
  resized to the output size.
- `scale_jitter_crop`: VGG's (Simonyan and Zisserman 2014, section 3.1): the image
  isotropically rescaled so its shorter side is S, S uniform in [S_min, S_max], and a
  random square crop of the output size.
- `center_crop`, `ten_crop`: evaluation; shorter side resized to `resize` (256), then
  the central crop, or the four corner crops, the central one and their mirror images
  (AlexNet's and the ResNet paper's 10-crop testing).
"""

import tensorflow as tf

from input_pipeline import windows


def decode(encoded, channels: int, jpeg: bool):
  """Decodes a whole image to uint8 (h, w, channels)."""
  if jpeg:
    return tf.io.decode_jpeg(encoded, channels=channels)
  return tf.io.decode_image(encoded, channels=channels, expand_animations=False)


def _shape(encoded, channels, jpeg):
  """(height, width) without decoding for JPEG; decodes other formats."""
  if jpeg:
    return tf.image.extract_jpeg_shape(encoded)[:2]
  return tf.shape(decode(encoded, channels, jpeg))[:2]


def _decode_window(encoded, window, channels, jpeg):
  """Decodes only `window` = [y, x, h, w] of the image (JPEG: without the rest)."""
  if jpeg:
    return tf.image.decode_and_crop_jpeg(encoded, window, channels=channels)
  image = decode(encoded, channels, jpeg)
  return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]


def _resize_uint8(image, size):
  """Bilinear resize with antialiasing (as PIL, torchvision's reference), to uint8."""
  out = tf.image.resize(image, size, method='bilinear', antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def random_resized_window(shape, seed, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3)):
  """[y, x, height, width] of an Inception-style crop of an image of `shape` (h, w).

  A fraction of the area in `area_range` and a width / height in `aspect_range`; after
  10 rejected draws, the whole image (TF's rule; torchvision falls back to a central
  crop).
  """
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
    tf.concat([shape, [1]], 0),
    bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
    seed=seed,
    min_object_covered=0.0,
    aspect_ratio_range=aspect_range,
    area_range=area_range,
    max_attempts=10,
    use_image_if_no_bounding_boxes=True,
  )
  return tf.stack([begin[0], begin[1], size[0], size[1]])


def random_resized_crop(
  encoded,
  seed,
  size: int,
  area_range=(0.08, 1.0),
  aspect_range=(3 / 4, 4 / 3),
  channels: int = 3,
  jpeg: bool = True,
):
  """Inception-style crop (`random_resized_window`), resized to `size` x `size`.

  Args:
    encoded: the encoded image (scalar string).
    seed: [2] int64, the example's randomness.
    size: the output's side.
    area_range: the crop's area as a fraction of the image's.
    aspect_range: the crop's width / height.
    channels: of the output.
    jpeg: whether `encoded` is a JPEG (decoded only inside the crop).

  Returns:
    uint8 (size, size, channels).
  """
  window = random_resized_window(_shape(encoded, channels, jpeg), seed, area_range, aspect_range)
  return _resize_uint8(_decode_window(encoded, window, channels, jpeg), [size, size])


def scale_jitter_window(shape, seed, size: int, shorter_side_range=(256, 512)):
  """[y, x, side, side] in an image of `shape` (h, w) of VGG's crop: the `size` crop
  of the image rescaled to shorter side S ~ U[shorter_side_range] (integers), mapped
  back to the original (side = size * shorter / S)."""
  s_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  lo, hi = shorter_side_range
  scale = tf.random.stateless_uniform([], s_seed, lo, hi + 1, dtype=tf.int32)
  shorter = tf.minimum(shape[0], shape[1])
  side = tf.cast(
    tf.round(tf.cast(size * shorter, tf.float32) / tf.cast(scale, tf.float32)), tf.int32
  )
  side = tf.clip_by_value(side, 1, shorter)
  y = tf.random.stateless_uniform([], y_seed, 0, shape[0] - side + 1, dtype=tf.int32)
  x = tf.random.stateless_uniform([], x_seed, 0, shape[1] - side + 1, dtype=tf.int32)
  return tf.stack([y, x, side, side])


def scale_jitter_crop(
  encoded, seed, size: int, shorter_side_range=(256, 512), channels: int = 3, jpeg: bool = True
):
  """VGG-style crop (`scale_jitter_window`), resized to `size` x `size`.

  Cropping in the original and resizing the crop equals rescaling first and cropping
  after, up to interpolation at the border, and decodes only the crop.

  Returns:
    uint8 (size, size, channels).
  """
  window = scale_jitter_window(_shape(encoded, channels, jpeg), seed, size, shorter_side_range)
  return _resize_uint8(_decode_window(encoded, window, channels, jpeg), [size, size])


def resize_shorter(image, resize: int):
  """Rescales so the shorter side is `resize`, keeping the aspect ratio (torchvision's
  Resize(int): the longer side is truncated to an integer)."""
  shape = tf.shape(image)[:2]
  h, w = shape[0], shape[1]
  longer = lambda a, b: tf.cast(resize * a / b, tf.int32)  # noqa: E731
  new = tf.cond(
    h <= w, lambda: tf.stack([resize, longer(w, h)]), lambda: tf.stack([longer(h, w), resize])
  )
  return _resize_uint8(image, new)


def _crop(image, y, x, size):
  return image[y : y + size, x : x + size]


def _center_offsets(image, size):
  shape = tf.shape(image)[:2]
  return windows.center_window(shape[0], shape[1], size, size)


def center_crop(encoded, size: int, resize: int, channels: int = 3, jpeg: bool = True):
  """Evaluation view: shorter side resized to `resize`, the central `size` crop.

  Returns:
    uint8 (size, size, channels).
  """
  image = resize_shorter(decode(encoded, channels, jpeg), resize)
  y, x = _center_offsets(image, size)
  return tf.ensure_shape(_crop(image, y, x, size), [size, size, channels])


def ten_crop(encoded, size: int, resize: int, channels: int = 3, jpeg: bool = True):
  """The 10 evaluation views: after resizing the shorter side to `resize`, the top-left,
  top-right, bottom-left, bottom-right and central `size` crops, then the same five
  mirrored left-right (torchvision's TenCrop order).

  Returns:
    uint8 (10, size, size, channels).
  """
  image = resize_shorter(decode(encoded, channels, jpeg), resize)
  shape = tf.shape(image)[:2]
  bottom, right = shape[0] - size, shape[1] - size
  cy, cx = _center_offsets(image, size)
  five = tf.stack(
    [
      _crop(image, 0, 0, size),
      _crop(image, 0, right, size),
      _crop(image, bottom, 0, size),
      _crop(image, bottom, right, size),
      _crop(image, cy, cx, size),
    ]
  )
  views = tf.concat([five, five[:, :, ::-1]], 0)
  return tf.ensure_shape(views, [10, size, size, channels])
