"""Augmentation: the host crops of the ImageNet recipes and the in-step CIFAR ones."""

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from PIL import Image

from input_pipeline import crops, preprocess, windows

SHAPES = [(60, 90), (90, 60), (75, 75), (40, 200)]


def _seed(i):
  return tf.constant([7, i], tf.int64)


def _smooth_image(h, w, seed=0):
  """A photo-like uint8 image: upsampled noise (JPEG and resizing behave as on photos)."""
  small = np.random.default_rng(seed).uniform(0, 255, (h // 8 + 2, w // 8 + 2, 3))
  big = tf.image.resize(small[None], (h, w), 'bicubic')[0].numpy()
  return np.clip(big, 0, 255).astype(np.uint8)


def _png(image):
  return tf.io.encode_png(image).numpy()


def test_random_resized_window_is_inside_with_the_recipes_area_and_aspect():
  areas = []
  for h, w in SHAPES:
    for i in range(60):
      y, x, ch, cw = crops.random_resized_window(tf.constant([h, w]), _seed(i)).numpy()
      assert y >= 0 and x >= 0 and y + ch <= h and x + cw <= w
      if (ch, cw) == (h, w):
        continue  # the fallback after 10 rejected draws: the whole image
      areas.append(ch * cw / (h * w))
      assert 0.08 - 0.02 <= areas[-1] <= 1.0
      # Aspect 3/4..4/3, up to rounding each side to whole pixels.
      assert 3 / 4 * (1 - 1.5 / ch) <= cw / ch <= 4 / 3 * (1 + 1.5 / ch)
  assert min(areas) < 0.2 and max(areas) > 0.8  # the whole range is drawn


def test_scale_jitter_window_is_the_crop_of_the_rescaled_image():
  sides = set()
  for h, w in SHAPES:
    for i in range(40):
      y, x, ch, cw = crops.scale_jitter_window(tf.constant([h, w]), _seed(i), 24, (30, 60)).numpy()
      assert ch == cw and y >= 0 and x >= 0 and y + ch <= h and x + cw <= w
      # side = 24 * shorter / S with S in [30, 60].
      assert round(24 * min(h, w) / 60) <= ch <= round(24 * min(h, w) / 30)
      sides.add(ch / min(h, w))
  assert len(sides) > 10


def test_jpeg_decode_and_crop_equals_decode_then_crop():
  """Up to the chroma upsampling at the crop's edge, which sees no pixel beyond it."""
  jpeg = tf.io.encode_jpeg(_smooth_image(75, 100), quality=90).numpy()
  for fn in (
    lambda enc, seed, j: crops.random_resized_crop(enc, seed, 32, jpeg=j),
    lambda enc, seed, j: crops.scale_jitter_crop(enc, seed, 32, (40, 80), jpeg=j),
  ):
    for i in range(5):
      fast, plain = fn(jpeg, _seed(i), True).numpy(), fn(jpeg, _seed(i), False).numpy()
      assert fast.shape == (32, 32, 3) and fast.dtype == np.uint8
      diff = np.abs(fast.astype(int) - plain.astype(int))
      assert (diff > 1).mean() < 0.05 and diff.mean() < 0.5
    assert not np.array_equal(fn(jpeg, _seed(0), True), fn(jpeg, _seed(1), True))


def _torchvision_resize(image, size):
  """torchvision's Resize(size) of a PIL image (its reference pipeline): PIL's bilinear
  resize, the shorter side to `size`, the longer one truncated. (torch itself can't be
  imported beside TensorFlow.)"""
  h, w = image.shape[:2]
  nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
  return np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))


def _torchvision_crop(image, y, x, size):
  return image[y : y + size, x : x + size]


def _torchvision_center(image, size):
  """CenterCrop(size): offsets int(round((h - size) / 2))."""
  h, w = image.shape[:2]
  return _torchvision_crop(image, int(round((h - size) / 2)), int(round((w - size) / 2)), size)


def test_center_crop_matches_torchvision_resize_then_center_crop():
  for h, w in [(90, 120), (121, 80)]:
    image = _smooth_image(h, w)
    ours = crops.center_crop(_png(image), 32, 40, jpeg=False).numpy()
    again = crops.center_crop(_png(image), 32, 40, jpeg=False).numpy()
    np.testing.assert_array_equal(ours, again)  # evaluation is deterministic
    want = _torchvision_center(_torchvision_resize(image, 40), 32)
    assert ours.shape == want.shape == (32, 32, 3)
    diff = np.abs(ours.astype(int) - want.astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 4  # PIL and TF resample alike


def test_center_window_is_torchvisions_for_python_ints_and_tensorflow_tensors():
  offset = tf.function(windows.center_offset)
  for size in range(32, 48):
    for crop in (29, 30, 31, 32):
      want = int(round((size - crop) / 2))  # torchvision's CenterCrop; round half to even
      assert windows.center_offset(size, crop) == want
      assert int(offset(tf.constant(size), crop)) == want
  assert windows.center_window(45, 34, 32, 31) == (6, 2)


def test_ten_crop_is_corners_centre_and_their_mirror_images():
  image = _smooth_image(90, 120)
  views = crops.ten_crop(_png(image), 32, 40, jpeg=False).numpy()
  assert views.shape == (10, 32, 32, 3) and views.dtype == np.uint8
  np.testing.assert_array_equal(views[5:], views[:5, :, ::-1])
  resized = crops.resize_shorter(tf.constant(image), 40).numpy()  # 40 x 53
  assert resized.shape == (40, 53, 3)
  np.testing.assert_array_equal(views[0], resized[:32, :32])
  np.testing.assert_array_equal(views[1], resized[:32, -32:])
  np.testing.assert_array_equal(views[2], resized[-32:, :32])
  np.testing.assert_array_equal(views[3], resized[-32:, -32:])
  np.testing.assert_array_equal(views[4], crops.center_crop(_png(image), 32, 40, jpeg=False))
  # torchvision's TenCrop order: corners, centre, then the same of the mirror image.
  ref = _torchvision_resize(image, 40)
  five = [
    _torchvision_crop(ref, 0, 0, 32),
    _torchvision_crop(ref, 0, 21, 32),
    _torchvision_crop(ref, 8, 0, 32),
    _torchvision_crop(ref, 8, 21, 32),
    _torchvision_center(ref, 32),
  ]
  for view, want in zip(views, five + [v[:, ::-1] for v in five]):
    assert np.abs(view.astype(int) - want.astype(int)).mean() < 1.0


def _augment(images, seed, crop_padding, random_flip):
  """preprocess.augment, compiled as in the train step, on numpy images."""
  config = ml_collections.ConfigDict({'crop_padding': crop_padding, 'random_flip': random_flip})
  fn = jax.jit(lambda x, key: preprocess.augment(x, key, config))
  return np.asarray(fn(images, jax.random.PRNGKey(seed)))


def test_flip_is_a_mirror_image():
  images = np.random.default_rng(0).uniform(size=(32, 6, 7, 3)).astype(np.float32)
  out = _augment(images, 1, 0, True)
  flipped = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, images)]
  kept = [np.array_equal(o, x) for o, x in zip(out, images)]
  assert all(f != k for f, k in zip(flipped, kept))  # each exactly one of the two
  assert 4 < sum(flipped) < 28


def test_pad_and_crop_stays_inside_the_padded_image():
  """CIFAR: 4 pixels of zero padding, a random 32x32 crop (here 8x8)."""
  images = np.random.default_rng(0).uniform(1, 2, (16, 8, 8, 3)).astype(np.float32)
  out = _augment(images, 2, 4, False)
  padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
  offsets = []
  for o, p in zip(out, padded):
    found = [
      (dy, dx)
      for dy in range(9)
      for dx in range(9)
      if np.array_equal(o, p[dy : dy + 8, dx : dx + 8])
    ]
    assert len(found) == 1  # a window of the padded image, inside it
    offsets.append(found[0])
  assert len(set(offsets)) > 8
