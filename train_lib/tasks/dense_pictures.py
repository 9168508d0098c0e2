"""Pictures of dense predictions: test images, their ground truth and the prediction.

Label maps are drawn with one fixed palette (class c has the same colour in every
picture of every run; background black, ignored pixels white) and a legend of the
class names. Saliency maps are drawn in grey levels, 0 black and 1 white.
"""

import os

import matplotlib

matplotlib.use('Agg')  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patches  # noqa: E402

# Class 0 (background) black, then 20 distinct colours (matplotlib's tab20 order, dark
# shades first); class c > 20 reuses colour 1 + (c - 1) % 20.
PALETTE = (
  np.array(
    [
      (0, 0, 0),
      (31, 119, 180),
      (255, 127, 14),
      (44, 160, 44),
      (214, 39, 40),
      (148, 103, 189),
      (140, 86, 75),
      (227, 119, 194),
      (127, 127, 127),
      (188, 189, 34),
      (23, 190, 207),
      (174, 199, 232),
      (255, 187, 120),
      (152, 223, 138),
      (255, 152, 150),
      (197, 176, 213),
      (196, 156, 148),
      (247, 182, 210),
      (199, 199, 199),
      (219, 219, 141),
      (158, 218, 229),
    ],
    np.float64,
  )
  / 255.0
)
IGNORE_COLOUR = (1.0, 1.0, 1.0)


def colour_of(label: int) -> tuple[float, ...]:
  """The palette colour of class `label` (RGB in [0, 1])."""
  return tuple(PALETTE[0 if label == 0 else 1 + (label - 1) % (len(PALETTE) - 1)])


def colourize(labels: np.ndarray, ignore_label: int) -> np.ndarray:
  """Label map (H, W) -> RGB image (H, W, 3) in the palette."""
  labels = np.asarray(labels, np.int64)
  out = np.zeros((*labels.shape, 3))
  for c in np.unique(labels):
    out[labels == c] = IGNORE_COLOUR if c == ignore_label else colour_of(int(c))
  return out


def save_predictions(
  path: str,
  images: np.ndarray,
  labels: np.ndarray,
  predictions: np.ndarray,
  class_names,
  *,
  saliency: bool,
  ignore_label: int,
  title: str = '',
) -> None:
  """Writes a PNG: one column per example, rows image / ground truth / prediction.

  Args:
    path: the PNG file; its directory is created.
    images: (K, H, W, C) in [0, 1], C = 1 or 3.
    labels: (K, H, W) label maps (saliency: any label > 0 is foreground).
    predictions: (K, H, W) class indices, or probabilities for saliency.
    class_names: names of the classes 0, 1, ... for the legend.
    saliency: draw binary ground truth and grey-level probabilities.
    ignore_label: the label drawn white and named 'ignored' in the legend.
    title: the figure's title.
  """
  k = len(images)
  fig, axes = plt.subplots(3, k, figsize=(1.6 * k + 1.8, 5.2), squeeze=False)
  rows = ('image', 'ground truth', 'prediction')
  for j in range(k):
    image = np.clip(images[j], 0.0, 1.0)
    if saliency:
      target = ((labels[j] > 0) & (labels[j] != ignore_label)).astype(np.float64)
      cells = (image, target, predictions[j])
    else:
      cells = (image, colourize(labels[j], ignore_label), colourize(predictions[j], ignore_label))
    for i, cell in enumerate(cells):
      ax = axes[i, j]
      if cell.ndim == 3 and cell.shape[-1] == 1:
        cell = cell[..., 0]
      grey = cell.ndim == 2
      ax.imshow(cell, cmap='gray' if grey else None, vmin=0.0, vmax=1.0, interpolation='nearest')
      ax.set_xticks([])
      ax.set_yticks([])
      if j == 0:
        ax.set_ylabel(rows[i])
  if saliency:
    handles = [
      patches.Patch(facecolor='white', edgecolor='black', label='salient (1)'),
      patches.Patch(facecolor='black', label='background (0)'),
    ]
  else:
    shown = np.unique(np.concatenate([np.ravel(labels), np.ravel(predictions)]))
    handles = [
      patches.Patch(
        facecolor=colour_of(c),
        edgecolor='black',
        label=class_names[c] if c < len(class_names) else str(c),
      )
      for c in range(len(class_names))
    ]
    if ignore_label in shown:
      handles.append(patches.Patch(facecolor=IGNORE_COLOUR, edgecolor='black', label='ignored'))
  fig.legend(
    handles=handles,
    loc='center right',
    frameon=False,
    fontsize='small',
    title='classes' if not saliency else 'grey level',
  )
  if title:
    fig.suptitle(title)
  fig.tight_layout(rect=(0, 0, 1 - 1.6 / (1.6 * k + 1.8), 1))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
