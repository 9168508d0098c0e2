"""Published tables as configs, the table runner, its report and the accuracy-cost chart."""

import json
import os
import shlex

import pytest
from helpers import ROOT, read_metrics, run_main

from models import registry
from train_lib.errors import UserError
from train_lib.tables import accuracy_cost, report, runner, runs

TABLES = {os.path.basename(p)[:-3]: p for p in accuracy_cost.table_files()}


def load(name):
  return accuracy_cost.load_table(TABLES[name])


def test_every_table_loads_and_names_configs_that_load():
  expected = {
    'resnet_cifar10',
    'resnet_imagenet',
    'vgg_imagenet',
    'hrnet_imagenet',
    'googlenet_imagenet',
    'alexnet_imagenet',
    'lenet5_mnist',
    'digits',
    'fashion_mnist',
  }
  assert expected <= set(TABLES)
  for name, path in TABLES.items():
    table = accuracy_cost.load_table(path)
    assert runs.is_table(table) and table.name == name and table.source
    assert len({r.slug for r in table.rows}) == len(table.rows)
    for row in table.rows:
      assert os.path.isfile(os.path.join(ROOT, row.config)), (name, row.config)
      config = runs.experiment_config(table, row, row.seeds[0])
      assert config.model.name in registry.MODELS, (name, row.name)
      for field, value in row.overrides:
        node = config
        for part in field.split('.'):
          node = node[part]
        assert node == value
      refs = report.references(row, table)
      assert all(0 < v < 100 for _, *vs, _ in refs for v in vs if v is not None)
      assert all(source for *_, source in refs)


def test_published_numbers_match_the_papers():
  # ResNet paper Table 6 and Table 3 (../shared/reference/architectures.md, section 2).
  cifar = {r.config_arg: r.published for r in load('resnet_cifar10').rows}
  assert cifar == {
    '20': 8.75,
    '32': 7.51,
    '44': 7.17,
    '56': 6.97,
    '110': 6.61,
    '1202': 7.93,
    'plain20': None,
    'plain32': None,
    'plain44': None,
    'plain56': None,
  }
  imagenet = {r.name: (r.published, r.published_top5) for r in load('resnet_imagenet').rows}
  assert imagenet['ResNet-34 A'] == (25.03, 7.76) and imagenet['plain-18'] == (27.94, None)
  assert imagenet['ResNet-152'] == (21.43, 5.71)
  tv = {r.name: r.also[0].published for r in load('resnet_imagenet').rows if r.also}
  assert tv['ResNet-50 v1.5'] == pytest.approx(100 - 76.130)  # torchvision Acc@1
  hrnet = {r.config_arg: r.published for r in load('hrnet_imagenet').rows}
  assert hrnet['w18_small_v1'] == 27.7 and hrnet['w64'] == 20.5
  assert {r.config_arg: r.published_top5 for r in load('googlenet_imagenet').rows}['paper'] == 10.07


def _write_run(directory, accuracies, done=True, error=None):
  """A run directory as train_and_evaluate and the runner leave it."""
  os.makedirs(directory)
  with open(os.path.join(directory, 'metrics.jsonl'), 'w') as f:
    for i, acc in enumerate(accuracies, 1):
      f.write(
        json.dumps({'step': 10 * i, 'split': 'train', 'loss': 1.0, 'accuracy': acc - 0.01}) + '\n'
      )
      f.write(json.dumps({'step': 10 * i, 'split': 'test', 'loss': 1.0, 'accuracy': acc}) + '\n')
  if done:
    runs.record_result(directory, {'accuracy': accuracies[-1]}, 61.0)
  if error:
    runs.record_failure(directory, error)


def _fake_cost(config):
  return 1000 + len(config.model.name), 10**6 * (1 + len(config.model.name))


def test_report_marks_missing_unfinished_and_failed_runs(tmp_path):
  table = load('digits')
  w = str(tmp_path)
  for seed, final in ((0, 0.99), (1, 0.98), (2, 0.97)):  # errors 1, 2, 3 %
    _write_run(f'{w}/lenet-5/seed{seed}', [0.5, final])
  _write_run(f'{w}/resnet-20/seed0', [0.6, 0.96])
  _write_run(f'{w}/resnet-20/seed1', [0.4], done=False)  # interrupted at step 10
  _write_run(f'{w}/resnet-20/seed2', [0.3], done=False, error='UserError: out of memory')
  _write_run(f'{w}/plain-20/seed0', [0.2], done=False)
  paths = report.write(table, w, cost=_fake_cost)
  rows = {
    line.split(' | ')[0].strip('| '): line
    for line in open(f'{w}/table.md').read().splitlines()
    if line.startswith('| ')
  }
  assert '| 2.00 ± 1.00 |' in rows['LeNet-5'] and rows['LeNet-5'].endswith('| done |')
  assert '| 3/3 | 1:01 |' in rows['LeNet-5']
  assert '| 4.00 |' in rows['ResNet-20']
  assert (
    '1/3 seeds done; seed 1 unfinished (step 10); seed 2 failed: UserError: out of memory'
  ) in rows['ResNet-20']
  assert 'seed 0 unfinished (step 10)' in rows['plain-20']
  assert rows['ResNet-56'].endswith('| not run |') and rows['plain-56'].endswith('| not run |')
  names = {os.path.basename(p) for p in paths}
  assert names == {'table.md', 'error_vs_published.png', 'curves.png', 'accuracy_cost.png'}
  for p in paths[1:]:
    assert os.path.getsize(p) > 20_000  # a drawn figure, not an empty canvas


def test_report_without_runs_still_draws_the_chart(tmp_path):
  table = load('resnet_cifar10')
  paths = report.write(table, str(tmp_path), cost=_fake_cost)
  assert {os.path.basename(p) for p in paths} == {
    'table.md',
    'error_vs_published.png',
    'accuracy_cost.png',
  }  # no runs: no curves
  text = open(paths[0]).read()
  assert '| ResNet-110 |' in text and 'not run' in text and '6.61' in text


def _zoo_cost(config):
  """The summary for the small models, a stand-in for the big ones (time)."""
  name = config.model.name
  if name.startswith('lenet') or name in ('cifar_resnet20', 'cifar_resnet56'):
    return accuracy_cost.model_cost(config)
  return 10**6 * (2 + len(name)), 10**9 * (1 + len(name) % 7)


def test_chart_has_one_labelled_point_per_zoo_model(tmp_path):
  table = load('digits')
  w = str(tmp_path)
  for seed in (0, 1):
    _write_run(f'{w}/lenet-5/seed{seed}', [0.99])
  results = report.collect(table, w)
  plotted = accuracy_cost.draw(table, results, w, f'{w}/chart.png', cost=_zoo_cost)
  assert os.path.getsize(f'{w}/chart.png') > 50_000
  labelled = [p for p in plotted if p['label']]
  for panel in {p['panel'] for p in plotted}:
    keys = [p['key'] for p in labelled if p['panel'] == panel]
    labels = [p['label'] for p in labelled if p['panel'] == panel]
    assert len(set(keys)) == len(keys) and len(set(labels)) == len(labels), panel
  models = {p['model'] for p in labelled}
  zoo = (
    {'alexnet', 'alexnet_original', 'googlenet', 'googlenet_paper', 'plain18', 'plain34', 'lenet5'}
    | {n for n in registry.MODELS if n.startswith('vgg')}
    | {f'resnet{d}' for d in (18, 34, 50, 101, 152)}
    | {f'cifar_resnet{d}' for d in (20, 32, 44, 56, 110, 1202)}
    | {n for n in registry.MODELS if n.startswith('hrnet_w')}
  )
  assert zoo <= models, zoo - models
  by_label = {(p['panel'], p['label']): p for p in labelled}
  # Costs come from the summary: ../shared/reference/architectures.md, 1b and 1c.
  resnet20 = by_label['CIFAR-10 (10,000 test images)', 'ResNet-20']
  assert (resnet20['params'], resnet20['x']) == (269_722, 40_551_040)
  assert resnet20['y'] == pytest.approx(100 - 8.75)
  lenet = by_label['MNIST (10,000 test images)', 'LeNet-5']
  assert lenet['params'] == 60_840 and lenet['y'] == pytest.approx(99.05)
  # The digits runs: our point, labelled (nothing published on the digits).
  ours = by_label['digits (360 test images)', 'LeNet-5']
  assert ours['kind'] == 'ours' and ours['y'] == pytest.approx(99.0)
  # Area proportional to parameters within a panel.
  cifar = [p for p in plotted if p['panel'].startswith('CIFAR')]
  ratios = {p['area'] / p['params'] for p in cifar}
  assert max(ratios) == pytest.approx(min(ratios))


def test_selection_overrides_and_launch_commands(tmp_path):
  table = load('digits')
  table.table.only = 'ResNet-20,plain-20'
  table.table.seeds = '1'
  table.table.overrides = 'num_epochs=2.0,lr_boundaries_epochs=(1.0, 1.5),dataset.data_dir=/d'
  assert [r.name for r in runs.selected_rows(table)] == ['ResNet-20', 'plain-20']
  config = runs.experiment_config(table, table.rows[1], 1)
  assert (config.num_epochs, config.lr_boundaries_epochs) == (2.0, (1.0, 1.5))
  assert config.dataset.data_dir == '/d' and config.seed == 1
  commands = runner.launch_commands(table, str(tmp_path), 'configs/tables/digits.py')
  assert len(commands) == 2
  args = shlex.split(commands[0])
  assert args[:3] == ['cd', ROOT, '&&'] and '--mode=table' in args
  assert '--config.table.only=resnet-20' in args and '--config.table.seeds=1' in args
  table.table.only = 'resnet-21'
  with pytest.raises(UserError, match='resnet-20'):
    runs.selected_rows(table)
  table.table.only = ''
  table.table.overrides = 'num_epoch=2'
  with pytest.raises(UserError, match="'num_epoch'"):
    runs.experiment_config(table, table.rows[0], 0)


def test_table_mode_runs_skips_and_records_failures(data_dir, tmp_path, capsys):
  w = str(tmp_path)
  # The chart's costs, cached beforehand: the zoo's summaries take a minute.
  cost = accuracy_cost.CostCache(os.path.join(w, 'model_costs.json'))
  for path in TABLES.values():
    t = accuracy_cost.load_table(path)
    for row in t.rows:
      config = runs.experiment_config(t, row, 0)
      cost._costs[accuracy_cost.model_key(config)] = _fake_cost(config)
  cost.save()
  # A directory that holds another run: its run must fail, and the table go on.
  os.makedirs(f'{w}/resnet-56/seed0')
  with open(f'{w}/resnet-56/seed0/config.json', 'w') as f:
    json.dump({'model': {'name': 'another'}}, f)
  small = (
    f'dataset.data_dir={data_dir},num_train_steps=4,batch_size=64,'
    'eval_batch_size=120,log_every_steps=2,eval_every_steps=2'
  )
  result = run_main(
    '--mode=table',
    '--config=configs/tables/digits.py',
    f'--workdir={w}',
    '--config.table.only=resnet-56,lenet-5',
    '--config.table.seeds=0',
    f'--config.table.overrides={small}',
  )
  assert result.returncode == 2, result.stderr
  assert result.stderr.count('error:') == 1 and 'error: 1 run(s) failed' in result.stderr
  assert [m['step'] for m in read_metrics(f'{w}/lenet-5/seed0') if m['split'] == 'test'] == [2, 4]
  rows = {
    line.split(' | ')[0].strip('| '): line
    for line in open(f'{w}/table.md').read().splitlines()
    if line.startswith('| ')
  }
  assert rows['LeNet-5'].split(' | ')[-1] == '1/3 seeds done; seed 1 not run; seed 2 not run |'
  assert 'seed 0 failed: workdir' in rows['ResNet-56']
  # Again: the finished run is skipped.
  table = load('digits')
  table.table.only, table.table.seeds, table.table.overrides = 'lenet-5', '0', small
  assert runner.run_experiments(table, w) == []
  assert 'LeNet-5, seed 0: finished already' in capsys.readouterr().out
  assert len(read_metrics(f'{w}/lenet-5/seed0')) == 4
  # A run of another config is not "finished": the table would train it (or refuse).
  config = runs.experiment_config(table, table.rows[0], 0)
  assert runs.same_config(f'{w}/lenet-5/seed0', config)
  config.learning_rate = 0.01
  assert not runs.same_config(f'{w}/lenet-5/seed0', config)
