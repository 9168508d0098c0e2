"""Published tables as configs: the format of the files in configs/tables/.

A table file's `get_config()` returns what `table(...)` builds: its experiments
(`row(...)`: a config file and string, overrides, seeds) beside the published numbers
they are compared with, and the runner's options under `table` (`runner_options`),
which the command line can set:

  python main.py --mode=table --config=configs/tables/digits.py --workdir=DIR \
      [--config.table.only=resnet-20,plain-20] [--config.table.seeds=0] \
      [--config.table.overrides=dataset.data_dir=/data,num_epochs=2] \
      [--config.table.print_commands=True]

Numbers are percentages as the papers print them, in the table's `metric` ('error' or
'accuracy', top-1, of a run's final evaluation: the last `test` row of its
metrics.jsonl). `published` is the number a row is compared with (column
`published_label`); `also` holds further published columns (`reference(...)`).
"""

import re

import ml_collections

METRICS = ('error', 'accuracy')
# The ImageNet tables share one panel of the accuracy-cost chart and torchvision's
# published single-crop numbers.
IMAGENET = 'ImageNet (ILSVRC-2012 validation, 50,000 images)'
TORCHVISION = 'torchvision (1 crop)'
TORCHVISION_SOURCE = (
  "torchvision 0.29.1, the IMAGENET1K_V1 weights' metadata: top-1 / "
  'top-5 accuracy on one 224 centre crop of the image resized to 256'
)


def torchvision(top1_accuracy: float, top5_accuracy: float) -> ml_collections.ConfigDict:
  """torchvision's published accuracies (as it prints them) as top-1/top-5 errors."""
  return reference(
    TORCHVISION, round(100 - top1_accuracy, 3), round(100 - top5_accuracy, 3), TORCHVISION_SOURCE
  )


def reference(
  label: str, published: float | None, top5: float | None = None, source: str = ''
) -> ml_collections.ConfigDict:
  """A further published number for a row, shown in its own column `label`."""
  return ml_collections.ConfigDict(
    {'label': label, 'published': published, 'published_top5': top5, 'source': source}
  )


def row(
  name: str,
  config: str,
  config_arg: str = '',
  *,
  seeds=(0,),
  overrides=(),
  published: float | None = None,
  top5: float | None = None,
  source: str = '',
  also=(),
  curves=(),
  chart: bool = True,
  cpu_hours: float | None = None,
) -> ml_collections.ConfigDict:
  """One experiment of a table.

  Args:
    name: as the table prints it, e.g. 'ResNet-20'; its lower-case slug ('resnet-20')
      names its directory, DIR/<slug>/seed<k>, and selects it (`table.only`).
    config: the experiment's config file, relative to the repository root.
    config_arg: its config string ('' calls `get_config()` without one).
    seeds: one run per seed (`config.seed`); ours is their mean +- std.
    overrides: (field, value) pairs set on the loaded config, e.g.
      (('model.name', 'lenet5'),), as `--config.model.name=lenet5` would.
    published: the number the row is compared with, in the table's metric (%).
    top5: the same for top-5, where published.
    source: where `published` comes from, if not the table's `source`.
    also: further published numbers, `reference(...)`s, one column per label.
    curves: the panels of the training-curve figure the row is drawn in.
    chart: put this row's model on the accuracy-cost chart (one point per model).
    cpu_hours: estimated hours for one seed on a 2-core CPU, where known.

  Returns:
    The row as a ConfigDict.
  """
  return ml_collections.ConfigDict(
    {
      'name': name,
      'slug': slug(name),
      'config': config,
      'config_arg': config_arg,
      'seeds': tuple(seeds),
      'overrides': tuple(tuple(o) for o in overrides),
      'published': published,
      'published_top5': top5,
      'published_source': source,
      'also': tuple(also),
      'curves': tuple(curves),
      'chart': chart,
      'cpu_hours': cpu_hours,
    }
  )


def runner_options() -> ml_collections.ConfigDict:
  """`config.table`: what `--mode=table` runs; settable from the command line."""
  options = ml_collections.ConfigDict()
  options.only = ''  # comma-separated row names or slugs; '' = every row
  options.seeds = ''  # comma-separated seeds to run of each row; '' = the row's own
  # Comma-separated FIELD=VALUE set on every experiment's config (after the row's own
  # overrides), e.g. 'dataset.data_dir=/data/tfds,num_train_steps=100'.
  options.overrides = ''
  options.print_commands = False  # print one launch command per experiment, run none
  return options


def table(
  name: str,
  title: str,
  rows,
  *,
  dataset: str,
  source: str,
  metric: str = 'error',
  metric_label: str = 'top-1 error (%)',
  published_label: str = 'paper',
  chart_published: bool = True,
  chart_reference=(),
  curve_panels=(),
  context=(),
) -> ml_collections.ConfigDict:
  """A table config.

  Args:
    name: short name, e.g. 'resnet_cifar10'.
    title: the title of table.md and the figures.
    rows: its `row(...)`s, in the order printed.
    dataset: the data the numbers are measured on (a panel of the chart).
    source: the paper or page of the published numbers.
    metric: 'error' or 'accuracy', in %.
    metric_label: the axis and column title of the metric.
    published_label: the column title of the rows' `published` numbers.
    chart_published: draw the published numbers on the accuracy-cost chart (False
      where they are not for our models, only for similar ones).
    chart_reference: labels of `also` columns whose top-1 number the chart prefers,
      in order (to show one protocol, e.g. single-crop, for all); otherwise a row's
      first published top-1 number.
    curve_panels: the order of the curve figure's panels (default: as the rows name
      them first).
    context: (name, published, source) of published rows beyond our zoo, for scale.

  Returns:
    The table as a ConfigDict.
  """
  if metric not in METRICS:
    raise ValueError(f'metric must be one of {METRICS}, got {metric!r}')
  slugs = [slug(r.name) for r in rows]
  if len(set(slugs)) != len(slugs):
    raise ValueError(f'row names of table {name} must differ in their slugs: {slugs}')
  config = ml_collections.ConfigDict()
  config.name, config.title, config.dataset, config.source = name, title, dataset, source
  config.metric, config.metric_label = metric, metric_label
  config.published_label = published_label
  config.chart_published = chart_published
  config.chart_reference = tuple(chart_reference)
  config.rows = tuple(rows)
  config.curve_panels = tuple(curve_panels)
  config.context = tuple(
    ml_collections.ConfigDict({'name': n, 'published': p, 'published_source': s})
    for n, p, s in context
  )
  config.table = runner_options()
  return config


def slug(name: str) -> str:
  """The directory name of a row: 'ResNet-34 (B)' -> 'resnet-34-b'."""
  return re.sub(r'[^a-z0-9.]+', '-', name.lower()).strip('-')
