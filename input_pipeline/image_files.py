"""Image files -> uint8 arrays, with torchvision's evaluation resize and central crop.

`Resize(s)` + `CenterCrop(c)` as torchvision applies them to PIL images: the shorter
side becomes s and the longer int(s * long / short), by PIL's bilinear filter (which
antialiases when it shrinks, as torchvision's `antialias=True`); the crop's offset is
int(round((size - c) / 2)) (input_pipeline/windows.py). The result is what `ToTensor`
then sees, before normalisation, which input_pipeline/preprocess.py does on the device.
"""

import numpy as np
from PIL import Image

from input_pipeline import windows
from input_pipeline.errors import DataError


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
  """Scales `img` so that its shorter side is `size` (torchvision's `Resize(size)`)."""
  w, h = img.size
  short, long = (w, h) if w <= h else (h, w)
  new_short, new_long = size, int(size * long / short)
  new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
  if (new_w, new_h) == (w, h):
    return img
  return img.resize((new_w, new_h), Image.BILINEAR)


def center_crop(img: Image.Image, height: int, width: int) -> Image.Image:
  """The central height x width window (torchvision's `CenterCrop`, image >= crop)."""
  w, h = img.size
  top, left = windows.center_window(h, w, height, width)
  return img.crop((left, top, left + width, top + height))


def load_images(
  files: list[str], channels: int, resize: int = 0, crop: tuple[int, int] | None = None
) -> np.ndarray:
  """The images of `files` as one uint8 NHWC array.

  Args:
    files: image file paths (anything PIL reads: PNG, JPEG, ...).
    channels: 3 (RGB) or 1 (grayscale); images are converted to it.
    resize: scale the shorter side to this (0: keep each image's size).
    crop: (height, width) of the central window to take (None: all of it).

  Raises:
    DataError: a file PIL cannot read, a crop larger than the image, or images of
      different sizes.
  """
  if channels not in (1, 3):
    raise DataError(f'input.channels={channels}: image files give 1 or 3 channels')
  arrays = []
  for f in files:
    try:
      with Image.open(f) as img:
        img = img.convert('RGB' if channels == 3 else 'L')
    except (OSError, ValueError) as e:
      raise DataError(
        f'cannot read the image {f} ({e}); give image files in --config.predict.images'
      ) from None
    if resize:
      img = resize_shorter(img, resize)
    if crop:
      if img.size[1] < crop[0] or img.size[0] < crop[1]:
        raise DataError(
          f'{f}: {img.size[1]}x{img.size[0]} after resizing is smaller '
          f'than the {crop[0]}x{crop[1]} crop; raise --config.input.'
          'eval_resize to at least input.image_size'
        )
      img = center_crop(img, *crop)
    a = np.asarray(img, np.uint8)
    arrays.append(a[..., None] if a.ndim == 2 else a)
  shapes = {a.shape for a in arrays}
  if len(shapes) > 1:
    raise DataError(
      f'the images have different sizes {sorted(shapes)}; set '
      "--config.input.eval_crop='center' to resize and crop them alike"
    )
  return np.stack(arrays)
