"""Crop windows: the box arithmetic shared by the crops of PIL images (image_files.py) and
of encoded images in TensorFlow (crops.py)."""


def center_offset(size, crop):
  """Offset of the central `crop` pixels of a side of `size` (>= crop).

  torchvision's `CenterCrop`: int(round((size - crop) / 2)), where round takes a half
  to the even neighbour (as `tf.round`). Integer arithmetic only, so it serves Python
  ints and TensorFlow integer tensors alike.
  """
  slack = size - crop
  return slack // 2 + slack % 4 // 3  # slack = 4k + 3: 2k + 1.5 rounds up to 2k + 2


def center_window(height, width, crop_height, crop_width):
  """(top, left) of the central crop_height x crop_width window of a height x width image."""
  return center_offset(height, crop_height), center_offset(width, crop_width)
