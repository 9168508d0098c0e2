"""PNG sheets of image tiles (kernels, feature maps), each tile placed pixel for pixel.

Used by `--mode=inspect` (train_lib/inspect_mode.py). A tile is drawn with
`Figure.figimage`, which copies its pixels unresampled to a position given in pixels,
so a tile of a sheet holds exactly the values it was given (magnified by an integer
`zoom`) at the box `save_sheet` returns. Titles, labels, notes and the colour bar are
matplotlib text and axes around the tiles. Agg only: no display.
"""

import dataclasses
import textwrap
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib import cm, colors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
PAD = 12  # pixels around everything
GAP = 8  # between tiles
TITLE_LINE = 20  # pixels per line of the title (12 pt)
LABEL = 15  # pixels above each tile for its label (8 pt)
NOTE_LINE = 15  # pixels per line of the notes (9 pt)
COLORBAR = 52  # the colour bar with its ticks and label
MIN_WIDTH = 420  # of the sheet's content, so that text has room
CHAR = 7.0  # average pixels per character of 9-pt text, for wrapping


@dataclasses.dataclass(frozen=True)
class Tile:
  """One picture of a sheet: RGB values in [0, 1] (NaN: background) and a label."""

  rgb: np.ndarray  # (h, w, 3)
  label: str = ''


@dataclasses.dataclass(frozen=True)
class Colorbar:
  """A horizontal colour bar under the tiles."""

  cmap: str
  vmin: float
  vmax: float
  label: str
  ticks: Sequence[tuple[float, str]] = ()  # (value, text); default: matplotlib's


def scale01(a: np.ndarray) -> np.ndarray:
  """`a` linearly mapped from its own minimum to 0 and maximum to 1 (constant: 0.5)."""
  a = np.asarray(a, np.float64)
  lo, hi = np.nanmin(a), np.nanmax(a)
  if hi <= lo:
    return np.full(a.shape, 0.5)
  return (a - lo) / (hi - lo)


def colorize(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
  """2-D `values` -> (h, w, 3) RGB through a matplotlib colour map; NaN stays NaN."""
  norm = colors.Normalize(vmin, vmax if vmax > vmin else vmin + 1.0, clip=True)
  rgb = matplotlib.colormaps[cmap](norm(np.asarray(values, np.float64)))[..., :3]
  rgb[np.isnan(values)] = np.nan
  return rgb


def gray(values01: np.ndarray) -> np.ndarray:
  """(h, w) or (h, w, 1) values in [0, 1] -> (h, w, 3) gray RGB; (h, w, 3) unchanged."""
  v = np.asarray(values01, np.float64)
  if v.ndim == 3 and v.shape[-1] == 3:
    return v
  v = v.reshape(v.shape[:2])
  return np.repeat(v[:, :, None], 3, axis=-1)


def symmetric(values: np.ndarray, cmap: str = 'RdBu_r') -> np.ndarray:
  """Signed values coloured on a scale symmetric about 0: -max|v| .. 0 .. +max|v|."""
  m = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
  return colorize(values, cmap, -m, m) if m > 0 else colorize(values, cmap, -1.0, 1.0)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
  """[0, 1] RGB -> uint8 (NaN -> white background), the values a PNG holds."""
  rgb = np.where(np.isnan(rgb), 1.0, np.clip(rgb, 0.0, 1.0))
  return np.round(rgb * 255.0).astype(np.uint8)


def grid(tiles: Sequence[Tile], cols: int) -> list[list[Tile]]:
  """`tiles` in rows of `cols`."""
  return [list(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]


def grid_columns(n: int) -> int:
  """Columns for n tiles: one row up to 8, then 8 wide up to 64, then 16 wide."""
  return n if n <= 8 else 8 if n <= 64 else 16


def zoom_for(size: int, target: int) -> int:
  """The integer magnification that brings a tile of `size` pixels near `target`."""
  return max(1, round(target / max(1, size)))


def _wrap(text: str, width_px: int) -> list[str]:
  chars = max(20, int(width_px / CHAR))
  return [line for para in text.split('\n') for line in textwrap.wrap(para, chars) or ['']]


def save_sheet(
  path: str,
  title: str,
  rows: Sequence[Sequence[Tile]],
  zoom: int,
  notes: Sequence[str] = (),
  colorbar: Colorbar | None = None,
) -> list[tuple[int, int, int, int]]:
  """Draws `rows` of tiles under a title, with notes and a colour bar, into a PNG.

  Args:
    path: the PNG file to write.
    title: the sheet's title (wrapped to the sheet's width).
    rows: tiles, row by row; each is magnified `zoom` times (nearest neighbour).
    zoom: integer magnification of every tile.
    notes: lines of text under the tiles (each wrapped), e.g. the scale used.
    colorbar: a colour bar under the notes.

  Returns:
    Each tile's box (top, left, height, width) in the PNG's pixels, in row order: the
    tile's values, magnified, are exactly the PNG's pixels there.
  """
  row_h = [max(t.rgb.shape[0] for t in row) * zoom for row in rows]
  cell_w = max(t.rgb.shape[1] for row in rows for t in row) * zoom
  cols = max(len(row) for row in rows)
  labels = LABEL if any(t.label for row in rows for t in row) else 0
  grid_w = cols * cell_w + (cols - 1) * GAP
  grid_h = sum(row_h) + len(rows) * labels + (len(rows) - 1) * GAP
  content_w = max(grid_w, MIN_WIDTH)
  title_lines = _wrap(title, int(content_w * 0.85))
  note_lines = [line for note in notes for line in _wrap(note, content_w)]
  width = content_w + 2 * PAD
  top_of_grid = PAD + len(title_lines) * TITLE_LINE + 4
  height = (
    top_of_grid
    + grid_h
    + (GAP + len(note_lines) * NOTE_LINE if note_lines else 0)
    + (COLORBAR if colorbar else 0)
    + PAD
  )

  fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor='white')
  FigureCanvasAgg(fig)
  text = lambda x, y, s, **kw: fig.text(x / width, 1 - y / height, s, **kw)  # noqa: E731
  for i, line in enumerate(title_lines):
    text(width / 2, PAD + i * TITLE_LINE, line, fontsize=12, ha='center', va='top')
  boxes = []
  left0 = PAD + (content_w - grid_w) // 2
  for r, row in enumerate(rows):
    for c, tile in enumerate(row):
      h, w = tile.rgb.shape[0] * zoom, tile.rgb.shape[1] * zoom
      top = top_of_grid + sum(row_h[:r]) + r * (labels + GAP) + labels
      left = left0 + c * (cell_w + GAP)
      pixels = np.repeat(np.repeat(to_uint8(tile.rgb), zoom, 0), zoom, 1)
      fig.figimage(pixels, xo=left, yo=height - top - h, origin='upper')
      if tile.label:
        text(left + w / 2, top - 2, tile.label, fontsize=8, ha='center', va='bottom')
      boxes.append((top, left, h, w))
  y = top_of_grid + grid_h + GAP
  for i, line in enumerate(note_lines):
    text(PAD, y + i * NOTE_LINE, line, fontsize=9, ha='left', va='top')
  if colorbar:
    y += len(note_lines) * NOTE_LINE + 8 if note_lines else 8
    bar_w = min(content_w, 360)
    cax = fig.add_axes(
      [(width - bar_w) / 2 / width, 1 - (y + 12) / height, bar_w / width, 12 / height]
    )
    mappable = cm.ScalarMappable(colors.Normalize(colorbar.vmin, colorbar.vmax), colorbar.cmap)
    bar = fig.colorbar(mappable, cax=cax, orientation='horizontal')
    if colorbar.ticks:
      bar.set_ticks([v for v, _ in colorbar.ticks], labels=[s for _, s in colorbar.ticks])
    bar.ax.tick_params(labelsize=8)
    bar.set_label(colorbar.label, fontsize=8)
  fig.savefig(path, dpi=DPI, facecolor='white')
  return boxes
