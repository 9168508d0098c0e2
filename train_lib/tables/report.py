"""The report of a table's runs: DIR/table.md beside the published numbers, and figures.

Collects whatever has finished (train_lib/tables/runs.py) and writes:
- `table.md`: per experiment ours (mean +- std over the finished seeds), the published
  numbers, the difference and the status of every seed (missing, unfinished or failed
  runs are marked, never fatal);
- `error_vs_published.png`: ours against the published numbers, one group per row;
- `curves.png` (where the table has curve panels and runs): training and test error
  against iterations per depth, in the manner of the ResNet paper's Fig. 6;
- `accuracy_cost.png`: the zoo's top-1 accuracy against multiply-accumulates
  (train_lib/tables/accuracy_cost.py).
"""

import dataclasses
import datetime
import os
import statistics

import jax
import ml_collections
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from train_lib.metrics_writer import info
from train_lib.tables import accuracy_cost
from train_lib.tables import runs as table_runs

DASH = '–'


@dataclasses.dataclass(frozen=True)
class RowResult:
  """A row of the table with the state of each of its runs."""

  row: ml_collections.ConfigDict
  runs: tuple[table_runs.RunState, ...]
  values: tuple[float, ...]  # the metric (%) of each finished run

  @property
  def mean(self) -> float | None:
    return statistics.fmean(self.values) if self.values else None

  @property
  def std(self) -> float | None:
    return statistics.stdev(self.values) if len(self.values) > 1 else None


def metric_percent(table: ml_collections.ConfigDict, accuracy: float) -> float:
  """A run's accuracy (a fraction) in the table's metric, in %."""
  return 100.0 * (accuracy if table.metric == 'accuracy' else 1.0 - accuracy)


def collect(table: ml_collections.ConfigDict, workdir: str) -> list[RowResult]:
  """The state of every row's runs: its own seeds and any others found on disk."""
  results = []
  for row in table.rows:
    seeds = sorted(set(row.seeds) | set(table_runs.seeds_on_disk(workdir, row)))
    runs = tuple(table_runs.run_state(workdir, row, s) for s in seeds)
    values = tuple(metric_percent(table, r.accuracy) for r in runs if r.status == 'done')
    results.append(RowResult(row, runs, values))
  return results


def references(row: ml_collections.ConfigDict, table: ml_collections.ConfigDict):
  """[(label, top-1, top-5, source)] of the row: `published` first, then `also`."""
  refs = []
  if row.published is not None or row.published_top5 is not None:
    refs.append(
      (
        table.published_label,
        row.published,
        row.published_top5,
        row.published_source or table.source,
      )
    )
  refs += [(a.label, a.published, a.published_top5, a.source) for a in row.also]
  return refs


def compared_with(row, table):
  """(label, value): the first published top-1 number of the row, or None."""
  return next(
    ((label, top1) for label, top1, _, _ in references(row, table) if top1 is not None), None
  )


def _number(x: float | None, signed: bool = False) -> str:
  if x is None:
    return DASH
  return f'{x:+.2f}' if signed else f'{x:.2f}'


def _published(x: float | None) -> str:
  """A published number as printed there (no added or dropped digits)."""
  return DASH if x is None else f'{x:g}'


def _duration(seconds: float | None) -> str:
  if seconds is None:
    return DASH
  s = int(round(seconds))
  return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}' if s >= 3600 else f'{s // 60}:{s % 60:02d}'


def status(result: RowResult) -> str:
  """'done', 'not run', or which seeds are done, unfinished, failed or missing."""
  runs = result.runs
  if all(r.status == 'done' for r in runs):
    return 'done'
  if all(r.status == 'missing' for r in runs):
    return 'not run'
  parts = [f'{sum(r.status == "done" for r in runs)}/{len(runs)} seeds done']
  for r in runs:
    if r.status == 'unfinished':
      parts.append(f'seed {r.seed} unfinished (step {r.last_step or 0})')
    elif r.status == 'failed':
      error = r.error.splitlines()[0] if r.error else ''
      parts.append(f'seed {r.seed} failed: {error[:120]}')
    elif r.status == 'missing':
      parts.append(f'seed {r.seed} not run')
  return '; '.join(parts)


def _columns(table) -> list[str]:
  """Labels of the published columns, in order of first appearance."""
  labels = []
  for row in table.rows:
    for label, *_ in references(row, table):
      if label not in labels:
        labels.append(label)
  return labels


def format_markdown(
  table: ml_collections.ConfigDict, results: list[RowResult], figures: list[str]
) -> str:
  """table.md: the comparison, the sources and the figures."""
  columns = _columns(table)
  has_top5 = {
    label: any(
      top5 is not None
      for row in table.rows
      for lb, _, top5, _ in references(row, table)
      if lb == label
    )
    for label in columns
  }
  header = (
    ['experiment', 'config', f'ours: {table.metric_label}']
    + [f'{c} (top-1 / top-5)' if has_top5[c] else c for c in columns]
    + ['difference', 'seeds', 'time per seed', 'status']
  )
  intro = (
    f"Ours: {table.metric_label} of each run's final evaluation (the last "
    '`test` row of its metrics.jsonl), mean ± standard deviation over the finished '
    'seeds (sample, n − 1).'
  )
  if columns:
    intro += (
      ' Difference: ours − the first published top-1 number of the row (named '
      f'where it is not from the "{columns[0]}" column).'
    )
  lines = [
    f'# {table.title}',
    '',
    intro,
    '',
    '| ' + ' | '.join(header) + ' |',
    '|' + '|'.join('---:' if 2 <= i < len(header) - 1 else '---' for i in range(len(header))) + '|',
  ]
  for result in results:
    row = result.row
    refs = {label: (top1, top5) for label, top1, top5, _ in references(row, table)}
    cells = []
    for c in columns:
      top1, top5 = refs.get(c, (None, None))
      cell = _published(top1) + (f' / {_published(top5)}' if has_top5[c] else '')
      cells.append(DASH if top1 is None and top5 is None else cell)
    ours = _number(result.mean)
    if result.std is not None:
      ours += f' ± {result.std:.2f}'
    compared = compared_with(row, table)
    difference = DASH
    if compared and result.mean is not None:
      difference = _number(result.mean - compared[1], signed=True)
      if columns and compared[0] != columns[0]:
        difference += f' (vs {compared[0]})'
    done = [r for r in result.runs if r.status == 'done']
    seconds = [r.seconds for r in done if r.seconds is not None]
    config = f'`{row.config}{":" + row.config_arg if row.config_arg else ""}`'
    if row.overrides:
      config += ' ' + ', '.join(f'`{k}={v}`' for k, v in row.overrides)
    lines.append(
      '| '
      + ' | '.join(
        [row.name, config, ours]
        + cells
        + [
          difference,
          f'{len(done)}/{len(result.runs)}',
          _duration(statistics.fmean(seconds) if seconds else None),
          status(result),
        ]
      )
      + ' |'
    )
  lines += ['', 'Sources:', f'- {table.source}']
  seen = {table.source}
  for row in table.rows:
    for label, _, _, source in references(row, table):
      if source and source not in seen:  # a column's own source, or a row's
        seen.add(source)
        lines.append(f'- {row.name if label == table.published_label else label}: {source}')
  if table.context:
    lines += ['', 'Published results beyond our zoo, for scale:']
    lines += [
      f'- {c.name}: {_published(c.published)}'
      + (f' ({c.published_source})' if c.published_source != table.source else '')
      for c in table.context
    ]
  if figures:
    lines += ['', 'Figures:', '']
    lines += [f'![{f}]({f})' for f in figures]
  stamp = datetime.datetime.now().isoformat(timespec='seconds')
  lines += ['', f'Written {stamp} by `python main.py --mode=report` (or `--mode=table`).']
  return '\n'.join(lines) + '\n'


def plot_published(table: ml_collections.ConfigDict, results: list[RowResult], path: str) -> None:
  """Bars of ours (mean, std, each seed as a dot) beside each published number."""
  columns = _columns(table)
  series = ['ours'] + columns
  n, k = len(results), len(series)
  width = 0.8 / k
  fig = Figure(figsize=(max(6.0, 0.45 * n * k + 2.0), 4.8), layout='constrained')
  ax = fig.add_subplot()
  colours = ['tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple', 'tab:brown']
  for j, name in enumerate(series):
    xs, heights, errors = [], [], []
    for i, result in enumerate(results):
      x = i - 0.4 + width * (j + 0.5)
      if name == 'ours':
        if result.mean is None:
          ax.text(x, 0, 'not run', rotation=90, ha='center', va='bottom', fontsize=7, color='grey')
          continue
        ax.plot([x] * len(result.values), result.values, '.', color='black', ms=3, zorder=3)
        xs.append(x)
        heights.append(result.mean)
        errors.append(result.std or 0.0)
      else:
        refs = {label: top1 for label, top1, _, _ in references(result.row, table)}
        if refs.get(name) is None:
          continue
        xs.append(x)
        heights.append(refs[name])
        errors.append(0.0)
    if not xs:
      if name == 'ours':  # keep the legend entry, so a reader sees nothing ran yet
        ax.bar([], [], color=colours[0], label='ours (none finished yet)')
      continue
    label = 'ours: mean ± std over seeds, dots = seeds' if name == 'ours' else f'published: {name}'
    ax.bar(
      xs,
      heights,
      width,
      yerr=errors if name == 'ours' else None,
      capsize=3,
      color=colours[j % len(colours)],
      label=label,
      hatch='' if name == 'ours' else '//',
      edgecolor='white',
      zorder=2,
    )
    for x, height, error in zip(xs, heights, errors):  # the value, above any error bar
      text = f'{height:.2f}' if name == 'ours' else _published(height)
      ax.annotate(
        text,
        (x, height + error),
        xytext=(0, 2),
        textcoords='offset points',
        ha='center',
        va='bottom',
        fontsize=7,
      )
  ax.set_xticks(
    range(n),
    [r.row.name for r in results],
    rotation=30 if n > 5 else 0,
    ha='right' if n > 5 else 'center',
  )
  ax.set_xlabel('experiment')
  ax.set_xlim(-0.6, n - 0.4)
  ax.set_ylim(bottom=0)
  ax.set_ylabel(table.metric_label)
  ax.set_title(table.title, fontsize=10)
  ax.grid(axis='y', alpha=0.3, zorder=0)
  ax.margins(y=0.1)
  ax.legend(fontsize=8, title=None if columns else 'nothing published for these', title_fontsize=8)
  fig.savefig(path, dpi=120)


def _mean_curve(runs_metrics: list[list[dict]], split: str, table) -> tuple[list, list]:
  """(steps, metric %) averaged at each step over the runs that logged it."""
  by_step: dict[int, list[float]] = {}
  for metrics in runs_metrics:
    for m in metrics:
      if m.get('split') in ((split,) if split == 'train' else table_runs.EVAL_SPLITS):
        by_step.setdefault(m['step'], []).append(metric_percent(table, m['accuracy']))
  steps = sorted(by_step)
  return steps, [statistics.fmean(by_step[s]) for s in steps]


def plot_curves(table: ml_collections.ConfigDict, results: list[RowResult], path: str) -> bool:
  """Training (dashed) and test (bold) curves per panel; False if there is no run."""
  panels = list(table.curve_panels)
  for row in table.rows:
    panels += [p for p in row.curves if p not in panels]
  data = {}
  for result in results:
    runs = [table_runs.read_metrics(r.directory) for r in result.runs if r.status != 'missing']
    runs = [m for m in runs if m]
    if result.row.curves and runs:
      data[result.row.name] = (
        len(runs),
        _mean_curve(runs, 'train', table),
        _mean_curve(runs, 'test', table),
      )
  if not panels or not data:
    return False
  fig = Figure(figsize=(4.2 * len(panels) + 0.6, 4.0), layout='constrained')
  axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
  finals = []
  for ax, panel in zip(axes, panels):
    rows = [r for r in table.rows if panel in r.curves]
    for colour, row in zip(_colours(len(rows)), rows):
      if row.name not in data:
        continue
      count, (train_x, train_y), (test_x, test_y) = data[row.name]
      seeds = f' ({count} seeds)' if count > 1 else ''
      ax.plot(train_x, train_y, '--', lw=1, color=colour)
      ax.plot(test_x, test_y, '-', lw=2, color=colour, label=row.name + seeds)
      finals += test_y[-1:]
    ax.set_title(panel)
    ax.set_xlabel('iterations (training steps)')
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    styles = [
      Line2D([], [], ls='--', lw=1, color='grey', label='training'),
      Line2D([], [], ls='-', lw=2, color='grey', label='test'),
    ]
    ax.legend(handles=handles + styles, fontsize=8)
  axes[0].set_ylabel('error (%)' if table.metric == 'error' else 'accuracy (%)')
  if table.metric == 'error' and finals:  # as Fig. 6, the range where the nets differ
    axes[0].set_ylim(0, min(100.0, max(5.0, 4.0 * max(finals))))
  fig.suptitle(
    f'{table.title.split(":")[0]}: training (dashed) and test (bold) curves', fontsize=10
  )
  fig.savefig(path, dpi=120)
  return True


def _colours(n: int) -> list:
  base = [
    'tab:blue',
    'tab:orange',
    'tab:green',
    'tab:red',
    'tab:purple',
    'tab:brown',
    'tab:pink',
    'tab:olive',
    'tab:cyan',
    'tab:grey',
  ]
  return [base[i % len(base)] for i in range(n)]


def write(table: ml_collections.ConfigDict, workdir: str, cost=None) -> list[str]:
  """Writes table.md and the figures into `workdir`; prints the table; returns paths.

  `cost` (config -> (parameters, MACs)) replaces the chart's summary-based one.
  """
  if jax.process_index() != 0:
    return []
  os.makedirs(workdir, exist_ok=True)
  results = collect(table, workdir)
  figures = ['error_vs_published.png']
  plot_published(table, results, os.path.join(workdir, figures[0]))
  if plot_curves(table, results, os.path.join(workdir, 'curves.png')):
    figures.append('curves.png')
  accuracy_cost.draw(table, results, workdir, os.path.join(workdir, 'accuracy_cost.png'), cost)
  figures.append('accuracy_cost.png')
  text = format_markdown(table, results, figures)
  path = os.path.join(workdir, 'table.md')
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)
  info(text)
  paths = [path] + [os.path.join(workdir, f) for f in figures]
  for p in paths:
    info(f'wrote {p}')
  return paths
