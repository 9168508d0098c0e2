"""The accuracy-cost chart: top-1 accuracy against multiply-accumulates, area by size.

One labelled point per zoo model that has a published top-1 number in a table config
(configs/tables/*.py whose `chart_published` is set; rows with `chart`), placed at the
parameters and multiply-accumulates that the summary code (train_lib/modes/costs.py)
computes for the row's model and input: no number on the chart is typed by hand. Where
the table being reported has finished runs, our measured accuracy is a second, hollow
marker joined to the published point of the same model (labelled itself where nothing
is published). One panel per dataset; marker area proportional to parameters within a
panel; x on a log axis.
"""

import dataclasses
import glob
import json
import math
import os
import sys

import ml_collections
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from train_lib.errors import UserError
from train_lib.tables import runs

AREA = 700.0  # points^2 of the largest model of a panel


@dataclasses.dataclass(frozen=True)
class Point:
  """A model on the chart."""

  dataset: str  # the panel
  label: str  # the row's name
  model: str  # config.model.name
  key: str  # the model's config and input size: one point per key and dataset
  params: int
  macs: int  # per image
  accuracy: float  # top-1, %
  kind: str  # 'published' | 'ours'
  reference: str = ''  # which published number (column label)


def table_files() -> list[str]:
  """configs/tables/*.py, the table configs."""
  pattern = os.path.join(runs.ROOT, 'configs', 'tables', '*.py')
  return sorted(p for p in glob.glob(pattern) if not p.endswith('__init__.py'))


def load_table(path: str) -> ml_collections.ConfigDict:
  return runs.load_module(path).get_config()


def _all_tables() -> list[ml_collections.ConfigDict]:
  """Every table config that loads; one that does not is left out with a warning."""
  tables = []
  for path in table_files():
    try:
      tables.append(load_table(path))
    except Exception as e:
      _warn(f'{os.path.relpath(path, runs.ROOT)} left out: {type(e).__name__}: {e}')
  return tables


def model_cost(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(parameters, multiply-accumulates per image) of the config's model and input."""
  import jax

  from input_pipeline import preprocess
  from train_lib import setup
  from train_lib.modes import costs

  model = setup.create_model(config, dtype=jax.numpy.float32)
  shape = preprocess.model_input_shape(config.input)
  result = costs.summarize(model, (1, *shape))
  return result.total_params, result.total_macs


def model_key(config: ml_collections.ConfigDict) -> str:
  """What fixes a model's cost: its config, classes and input size."""
  return json.dumps(
    [
      config.model.to_dict(),
      config.dataset.num_classes,
      config.input.image_size,
      config.input.pad_to,
      config.input.channels,
    ],
    sort_keys=True,
  )


class CostCache:
  """`model_cost`, remembered in a JSON file (the zoo takes a minute to summarize)."""

  def __init__(self, path: str | None):
    self._path = path
    self._costs = {}
    if path and os.path.exists(path):
      with open(path) as f:
        self._costs = json.load(f)

  def __call__(self, config: ml_collections.ConfigDict) -> tuple[int, int]:
    key = model_key(config)
    if key not in self._costs:
      self._costs[key] = model_cost(config)
    params, macs = self._costs[key]
    return int(params), int(macs)

  def save(self) -> None:
    if self._path:
      with open(self._path + '.tmp', 'w') as f:
        json.dump(self._costs, f)
      os.replace(self._path + '.tmp', self._path)


def _as_accuracy(table, value: float) -> float:
  return 100.0 - value if table.metric == 'error' else value


def chart_reference(row, table):
  """(label, top-1 %) the chart shows for a row, or None: the first of the table's
  `chart_reference` labels the row has, else the row's first published top-1 number."""
  refs = [(a.label, a.published) for a in row.also if a.published is not None]
  if row.published is not None:
    refs.insert(0, (table.published_label, row.published))
  preferred = [r for label in table.chart_reference for r in refs if r[0] == label]
  return (preferred or refs or [None])[0]


def _warn(message: str) -> None:
  print(f'warning: accuracy-cost chart: {message}', file=sys.stderr, flush=True)


def published_points(cost, tables=None) -> list[Point]:
  """The zoo's published points: one per (dataset, model), from every table config."""
  points, seen = [], set()
  for table in tables if tables is not None else _all_tables():
    if not table.chart_published:
      continue
    for row in table.rows:
      ref = chart_reference(row, table) if row.chart else None
      if ref is None:
        continue
      try:
        config = runs.experiment_config(table, row, row.seeds[0])
        params, macs = cost(config)
      except (UserError, ValueError, ImportError) as e:
        _warn(f'{table.name}, {row.name} left out: {e}')
        continue
      key = model_key(config)
      if (table.dataset, key) in seen:
        continue
      seen.add((table.dataset, key))
      points.append(
        Point(
          table.dataset,
          row.name,
          config.model.name,
          key,
          params,
          macs,
          _as_accuracy(table, ref[1]),
          'published',
          ref[0],
        )
      )
  return points


def measured_points(table, results, cost) -> list[Point]:
  """Our mean accuracy of each row of `table` that has finished runs."""
  points = []
  for result in results:
    if result.mean is None:
      continue
    row = result.row
    try:
      config = runs.experiment_config(table, row, row.seeds[0])
      params, macs = cost(config)
    except (UserError, ValueError, ImportError) as e:
      _warn(f'{table.name}, {row.name} left out: {e}')
      continue
    points.append(
      Point(
        table.dataset,
        row.name,
        config.model.name,
        model_key(config),
        params,
        macs,
        _as_accuracy(table, result.mean),
        'ours',
      )
    )
  return points


def draw(table, results, workdir: str, path: str, cost=None) -> list[dict]:
  """Draws the chart for `table`'s report into `path`; returns what was plotted.

  Args:
    table: the table being reported (its finished runs add our points).
    results: its `table_report.collect` results.
    workdir: the table's directory (holds the cost cache, model_costs.json).
    path: the PNG to write.
    cost: config -> (params, MACs); default: the summary, cached in the workdir.
  """
  cost = cost or CostCache(os.path.join(workdir, 'model_costs.json'))
  points = published_points(cost) + measured_points(table, results, cost)
  if isinstance(cost, CostCache):
    cost.save()
  return plot(points, path)


def _round_params(n: float) -> float:
  """One significant digit: 143.7M -> 100M, 3.2M -> 3M."""
  scale = 10 ** math.floor(math.log10(n))
  return math.floor(n / scale) * scale


def _count(n: float) -> str:
  for unit, size in (('G', 1e9), ('M', 1e6), ('k', 1e3)):
    if n >= size:
      return f'{n / size:.3g}{unit}'
  return f'{n:.3g}'


FONT = 6.5  # points, of the labels


def _place_labels(ax, items: list[dict]) -> None:
  """Annotates each item beside its point, moving a label that would overlap one
  already placed to the next free spot (above, below, then left of the point)."""
  scale = ax.figure.dpi / 72.0  # display pixels per point
  placed = []  # boxes (x0, y0, x1, y1) in display pixels
  for d in sorted(items, key=lambda d: (d['y'], d['x'])):
    px, py = ax.transData.transform((d['x'], d['y']))
    w, h = 0.55 * FONT * len(d['label']) * scale, 1.2 * FONT * scale
    r = math.sqrt(d['area']) / 2 * scale  # the marker's radius
    spots = [(r + 2, -h / 2)] + [(r + 2, k * s) for k in (1, 2, 3, 4) for s in (h, -h)]
    spots += [(-r - 2 - w, -h / 2), (-r - 2 - w, h), (-r - 2 - w, -h)]
    for dx, dy in spots:
      box = (px + dx, py + dy, px + dx + w, py + dy + h)
      if not any(
        box[0] < q[2] and q[0] < box[2] and box[1] < q[3] and q[1] < box[3] for q in placed
      ):
        break
    else:
      dx, dy = spots[0]
      box = (px + dx, py + dy, px + dx + w, py + dy + h)
    placed.append(box)
    text = ax.annotate(
      d['label'],
      (d['x'], d['y']),
      xytext=(dx / scale, dy / scale),
      textcoords='offset points',
      fontsize=FONT,
      va='bottom',
      color='navy' if d['kind'] == 'published' else 'darkred',
    )
    text.set_in_layout(False)  # the layout the positions were computed in stays


def _panel(ax, points: list[Point]) -> list[dict]:
  """One dataset's points; returns them as plotted."""
  largest = max(p.params for p in points)
  area = lambda p: AREA * p.params / largest  # noqa: E731
  published = {p.key: p for p in points if p.kind == 'published'}
  plotted = []
  for p in points:
    if p.kind == 'published':
      ax.scatter(
        p.macs,
        p.accuracy,
        s=area(p),
        color='tab:blue',
        alpha=0.55,
        edgecolors='navy',
        linewidths=0.6,
        zorder=3,
      )
    else:
      ax.scatter(
        p.macs,
        p.accuracy,
        s=area(p),
        facecolors='none',
        edgecolors='tab:red',
        linewidths=1.5,
        marker='D',
        zorder=4,
      )
      if p.key in published:
        q = published[p.key]
        ax.plot(
          [q.macs, p.macs], [q.accuracy, p.accuracy], color='tab:red', lw=0.7, alpha=0.6, zorder=2
        )
    labelled = p.kind == 'published' or p.key not in published
    plotted.append(
      {
        'panel': p.dataset,
        'label': p.label if labelled else '',
        'model': p.model,
        'key': p.key,
        'x': p.macs,
        'y': p.accuracy,
        'area': area(p),
        'params': p.params,
        'kind': p.kind,
      }
    )
  ax.set_xscale('log')
  ax.margins(x=0.25, y=0.12)
  ax.autoscale_view()
  low, high = ax.get_ylim()
  ax.set_ylim(low, min(high, 100.5))  # accuracy stops at 100%
  sizes = sorted({_round_params(largest / f) for f in (1, 4, 16)}, reverse=True)
  handles = []
  if published:
    handles.append(
      Line2D([], [], ls='', marker='o', color='tab:blue', alpha=0.55, label='published top-1')
    )
  if any(p.kind == 'ours' for p in points):
    handles.append(
      Line2D(
        [],
        [],
        ls='',
        marker='D',
        markerfacecolor='none',
        markeredgecolor='tab:red',
        label='ours (mean over seeds)',
      )
    )
  handles += [
    Line2D(
      [],
      [],
      ls='',
      marker='o',
      markerfacecolor='none',
      markeredgecolor='grey',
      markersize=math.sqrt(AREA * s / largest),
      label=f'{_count(s)} parameters',
    )
    for s in sizes
  ]
  ax.legend(handles=handles, fontsize=7, loc='best', labelspacing=1.2, borderpad=0.9)
  ax.set_title(points[0].dataset, fontsize=10)
  low, high = ax.get_xlim()
  decades = math.log10(high / low)
  ax.xaxis.set_major_locator(
    ticker.LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2.2 else (1.0, 3.0))
  )
  ax.xaxis.set_major_formatter(ticker.EngFormatter())  # 200 M, 1 G
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  ax.set_xlabel('multiply-accumulates per image (MACs, log scale)')
  ax.set_ylabel('top-1 accuracy (%)')
  ax.grid(alpha=0.3, which='both')
  return plotted


def plot(points: list[Point], path: str) -> list[dict]:
  """Draws one panel per dataset (the one with most points on top, full width).

  Returns:
    One dict per point as passed to matplotlib: panel, label ('' for a measured point
    beside its published one), model, x (MACs), y (accuracy %), area, params, kind.
  """
  datasets = []
  for p in points:
    if p.dataset not in datasets:
      datasets.append(p.dataset)
  datasets.sort(key=lambda d: -sum(p.dataset == d for p in points))
  fig = Figure(figsize=(13, 12 if len(datasets) > 1 else 7.5), dpi=120, layout='constrained')
  fig.suptitle(
    'Accuracy against cost: parameters and MACs from the summary code '
    '(train_lib/modes/costs.py), marker area proportional to parameters',
    fontsize=10,
  )
  plotted = []
  if not datasets:
    fig.add_subplot().text(0.5, 0.5, 'no model with a published or measured accuracy', ha='center')
  else:
    if len(datasets) > 1:  # two sub-figures, each laid out on its own
      top, bottom = fig.subfigures(2, 1, height_ratios=(1.6, 1))
      axes = [top.add_subplot()] + list(bottom.subplots(1, len(datasets) - 1, squeeze=False)[0])
    else:
      axes = [fig.add_subplot()]
    panels = [
      (ax, _panel(ax, [p for p in points if p.dataset == dataset]))
      for ax, dataset in zip(axes, datasets)
    ]
    fig.draw_without_rendering()  # lays the panels out, so labels can avoid each other
    for ax, items in panels:
      _place_labels(ax, [d for d in items if d['label']])
      plotted += items
  fig.savefig(path)  # at the dpi the labels were placed for
  return plotted
