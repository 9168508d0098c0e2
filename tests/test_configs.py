"""Every config family: loads, shrinks for smoke, states its schedule rule, rejects bad strings.

No training and no compilation: the schedules are resolved from the final configs and
their learning rates evaluated with numpy-sized arrays.
"""

import glob
import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import optax
import pytest
from helpers import ROOT

from train_lib import optim
from train_lib.errors import UserError

# Training examples of each dataset, for a plausible steps_per_epoch.
TRAIN_EXAMPLES = {
  'cifar10': 50_000,
  'cifar100': 50_000,
  'fashion_mnist_idx': 60_000,
  'mnist': 60_000,
  'digits': 1_437,
  'digit_scenes': 12_000,
  'imagenet2012': 1_281_167,
  'cityscapes/semantic_segmentation': 2_975,
  'coco/2017': 149_813,  # person instances
  'oxford_iiit_pet': 3_680,
  'voc/2012': 1_464,
}

# Every config file with the strings tested ('' = its default variant).
FAMILIES = {
  'cifar10_resnet': ('', '20', '110', '110,val', '1202_b,cifar100', 'plain56'),
  'cityscapes_hrnet': ('', 'w18_small_v1'),
  'coco_pose_hrnet': ('', 'w48'),
  'digits_lenet5': ('',),
  'digits_resnet': ('', 'plain56'),
  'fashion_mnist_lenet5': ('',),
  'fashion_mnist_resnet': ('', 'plain56'),
  'fashion_mnist_zoo': ('', 'vgg16', 'googlenet'),
  'finetune_resnet18_digits': ('',),
  'imagenet_alexnet': ('', 'original'),
  'imagenet_googlenet': ('', 'paper'),
  'imagenet_hrnet': ('', 'w48'),
  'imagenet_resnet': ('', '18', 'plain34_v1,scale,tencrop'),
  'imagenet_vgg': ('', '11_lrn', '16_bn', '19,jitter'),
  'mnist_lenet5': ('',),
  'pets_unet': ('',),
  'saliency_u2net': ('', 'small'),
  'scenes_unet': ('',),
  'seg_deconvnet': ('', 'scenes'),
  'seg_unet': ('', 'same'),
}
NOT_EXPERIMENTS = {'__init__', 'default', 'recipes', 'config_string'}
CASES = [(f, a) for f, args in FAMILIES.items() for a in args]


def load(family, arg=''):
  return importlib.import_module(f'configs.{family}').get_config(arg)


def steps_per_epoch(config):
  split = config.dataset.train_split
  m = re.fullmatch(r'train\[:(\d+)\]', split)
  n = int(m.group(1)) if m else TRAIN_EXAMPLES[config.dataset.name]
  return n // config.batch_size


def resolve(config):
  return optim.resolve_schedule(config, steps_per_epoch(config))


def with_smoke(arg):
  return f'{arg},smoke' if arg else 'smoke'


def test_every_config_file_is_tested():
  files = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'configs', '*.py'))}
  assert files - NOT_EXPERIMENTS == set(FAMILIES)


@pytest.mark.parametrize('family,arg', CASES)
def test_config_and_its_smoke_form_load(family, arg):
  config = load(family, arg)
  assert config.model.name and resolve(config).steps > 0
  smoke = load(family, with_smoke(arg))
  assert (smoke.batch_size, smoke.num_train_steps) == (8, 4)
  assert smoke.model.name == config.model.name
  schedule = resolve(smoke)
  assert schedule.steps == 4 and schedule.batch == 8
  # The smoke run's peak follows the batch: the recipe's rule, or linearly.
  assert schedule.peak_lr == pytest.approx(resolve(config).peak_lr * 8 / config.batch_size)


# The schedule of each family at its default batch, as the files stated it before the
# rule fields (lr_batch, schedule_batch): (learning rate, lr_schedule, lr_decay,
# total steps or None for num_epochs * steps_per_epoch, num_epochs, warmup_epochs,
# lr_boundaries_epochs), with steps_per_epoch = train examples // batch.
def _cifar(spe, warmup=0):
  return (0.1, 'step', 0.1, 64_000, None, warmup / spe, (32_000 / spe, 48_000 / spe))


OLD = {
  ('cifar10_resnet', ''): _cifar(390),
  ('cifar10_resnet', '110'): _cifar(390, 400),
  ('cifar10_resnet', '110,val'): _cifar(351, 400),
  ('fashion_mnist_resnet', ''): _cifar(468),
  ('digits_resnet', ''): (0.1, 'step', 0.1, None, 20.0, 2.0, (10.0, 15.0)),
  ('digits_lenet5', ''): (0.05, 'cosine', 0.1, None, 40.0, 0.0, ()),
  ('mnist_lenet5', ''): (0.05, 'cosine', 0.1, None, 20.0, 0.0, ()),
  ('fashion_mnist_lenet5', ''): (0.05, 'cosine', 0.1, None, 12.0, 0.0, ()),
  ('fashion_mnist_zoo', ''): (0.1, 'cosine', 0.1, None, 30.0, 1.0, ()),
  ('fashion_mnist_zoo', 'vgg16'): (0.01, 'cosine', 0.1, None, 30.0, 1.0, ()),
  ('finetune_resnet18_digits', ''): (0.01, 'cosine', 0.1, None, 10.0, 0.0, ()),
  ('imagenet_resnet', ''): (0.1 * 256 / 256, 'step', 0.1, None, 90.0, 0.0, (30.0, 60.0)),
  ('imagenet_alexnet', ''): (0.01 * 256 / 256, 'step', 0.1, None, 90.0, 0.0, (30.0, 60.0)),
  ('imagenet_alexnet', 'original'): (
    0.01 * 128 / 128,
    'step',
    0.1,
    None,
    90.0,
    0.0,
    tuple(90.0 * i / 4 for i in (1, 2, 3)),
  ),
  ('imagenet_googlenet', ''): (
    0.01 * 256 / 32,
    'step',
    0.96,
    None,
    250.0,
    5.0,
    tuple(float(e) for e in range(8, 250, 8)),
  ),
  ('imagenet_hrnet', ''): (0.05 * 128 / 128, 'step', 0.1, None, 100.0, 0.0, (30.0, 60.0, 90.0)),
  ('imagenet_vgg', ''): (
    1e-2 * 256 / 256,
    'step',
    0.1,
    None,
    74.0,
    0.0,
    tuple(74.0 * i / 4 for i in (1, 2, 3)),
  ),
  ('imagenet_vgg', '16_bn'): (0.1 * 256 / 256, 'step', 0.1, None, 90.0, 0.0, (30.0, 60.0)),
  ('cityscapes_hrnet', ''): (0.01 * 12 / 12, 'cosine', 0.1, None, 484.0, 0.0, ()),
  ('coco_pose_hrnet', ''): (1e-3, 'step', 0.1, None, 210.0, 0.0, (170.0, 200.0)),
  ('pets_unet', ''): (1e-3, 'cosine', 0.1, None, 40.0, 0.0, ()),
  ('saliency_u2net', ''): (1e-3, 'constant', 0.1, None, 20.0, 0.0, ()),
  ('scenes_unet', ''): (3e-3, 'cosine', 0.1, 3000, None, 0.0, ()),
  ('seg_deconvnet', ''): (0.01, 'constant', 0.1, None, 50.0, 0.0, ()),
  ('seg_unet', ''): (1e-3, 'constant', 0.1, 20_000, None, 0.0, ()),
}


def _old_learning_rate(old, spe):
  """The formula of optim.learning_rate_schedule before the rule fields."""
  base, kind, decay, total, num_epochs, warmup_epochs, boundaries_epochs = old
  total = total or int(num_epochs * spe)
  warmup = int(round(warmup_epochs * spe))
  if kind == 'constant':
    main = optax.constant_schedule(base)
  elif kind == 'cosine':
    main = optax.cosine_decay_schedule(base, max(1, total - warmup))
  else:
    main = optax.piecewise_constant_schedule(
      base, {int(round(e * spe)) - warmup: decay for e in boundaries_epochs}
    )
  if warmup:
    main = optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])
  return total, main


@pytest.mark.parametrize('family,arg', list(OLD))
def test_default_batch_keeps_the_schedule_of_before(family, arg):
  config = load(family, arg)
  spe = steps_per_epoch(config)
  total, old = _old_learning_rate(OLD[family, arg], spe)
  schedule = optim.resolve_schedule(config, spe)
  assert schedule.steps == total
  steps = np.arange(total + 2)
  new = optim.learning_rate_schedule(config, schedule)
  np.testing.assert_array_equal(np.asarray(new(steps)), np.asarray(old(steps)))


# (family, arg, batch, the schedule its stated rule gives at that batch).
OVERRIDES = [
  # CIFAR: iterations at batch 128; steps and drops x128/B, peak lr xB/128.
  ('cifar10_resnet', '56', 256, dict(steps=32_000, boundaries=(16_000, 24_000), peak_lr=0.2)),
  (
    'cifar10_resnet',
    '110',
    64,
    dict(steps=128_000, boundaries=(64_000, 96_000), warmup_steps=800, peak_lr=0.05),
  ),
  ('fashion_mnist_resnet', '20', 256, dict(steps=32_000, boundaries=(16_000, 24_000), peak_lr=0.2)),
  # ImageNet: peak lr = base x batch / its batch, schedule in epochs.
  (
    'imagenet_resnet',
    '50',
    512,
    dict(steps=90 * 2502, boundaries=(30 * 2502, 60 * 2502), peak_lr=0.2, epochs=90.0),
  ),
  ('imagenet_alexnet', '', 512, dict(peak_lr=0.02, boundaries=(30 * 2502, 60 * 2502))),
  ('imagenet_alexnet', 'original', 256, dict(peak_lr=0.02, steps=90 * 5004)),
  ('imagenet_vgg', '16', 128, dict(peak_lr=0.005, steps=74 * 10009)),
  ('imagenet_vgg', '16_bn', 512, dict(peak_lr=0.2)),
  ('imagenet_googlenet', '', 32, dict(peak_lr=0.01, warmup_steps=5 * 40036, epochs=250.0)),
  ('imagenet_hrnet', 'w18', 256, dict(peak_lr=0.1, boundaries=(30 * 5004, 60 * 5004, 90 * 5004))),
  ('cityscapes_hrnet', '', 24, dict(peak_lr=0.02, steps=484 * 123)),
  # CIFAR's optimizer, schedule in epochs.
  (
    'digits_resnet',
    '20',
    64,
    dict(steps=440, boundaries=(220, 330), warmup_steps=44, peak_lr=0.05),
  ),
  # The learning rate as given, schedule in epochs.
  ('digits_lenet5', '', 64, dict(steps=40 * 22, peak_lr=0.05)),
  ('mnist_lenet5', '', 256, dict(steps=20 * 234, peak_lr=0.05)),
  ('fashion_mnist_lenet5', '', 256, dict(steps=12 * 234, peak_lr=0.05)),
  ('fashion_mnist_zoo', 'resnet18', 256, dict(steps=30 * 234, warmup_steps=234, peak_lr=0.1)),
  ('finetune_resnet18_digits', '', 128, dict(steps=10 * 11, peak_lr=0.01)),
  ('coco_pose_hrnet', '', 64, dict(peak_lr=1e-3, boundaries=(170 * 2340, 200 * 2340))),
  ('pets_unet', '', 64, dict(steps=40 * 57, peak_lr=1e-3)),
  ('saliency_u2net', '', 24, dict(steps=20 * 500, peak_lr=1e-3)),
  ('scenes_unet', '', 32, dict(steps=1500, peak_lr=3e-3)),
  ('seg_deconvnet', 'scenes', 32, dict(steps=50 * 375, peak_lr=0.01)),
  # Steps as given.
  ('seg_unet', 'same', 4, dict(steps=20_000, peak_lr=1e-3)),
]


def test_every_family_has_a_batch_override_case():
  assert {f for f, *_ in OVERRIDES} == set(FAMILIES)


@pytest.mark.parametrize('family,arg,batch,expected', OVERRIDES)
def test_batch_override_follows_the_stated_rule(family, arg, batch, expected):
  config = load(family, arg)
  config.batch_size = batch  # as --config.batch_size=B does
  schedule = resolve(config)
  assert schedule.batch == batch
  for field, value in expected.items():
    assert getattr(schedule, field) == pytest.approx(value), field


LINE = re.compile(
  r'schedule: steps=\d+ epochs=\d+\.\d+(e[+-]\d+)? batch=\d+ '
  r'peak_lr=\d+(\.\d+)?(e[+-]\d+)? warmup_steps=\d+ boundaries=(\d+(,\d+)*)?'
)


def test_schedule_line_and_dict():
  schedule = resolve(load('cifar10_resnet', '110'))
  assert schedule.line() == (
    'schedule: steps=64000 epochs=164.103 batch=128 peak_lr=0.1 warmup_steps=400 '
    'boundaries=32000,48000'
  )
  for family, arg in (('digits_lenet5', ''), ('saliency_u2net', ''), ('imagenet_googlenet', '')):
    config = load(family, arg)
    line = resolve(config).line()
    assert LINE.fullmatch(line), line
    assert line.endswith('boundaries=') == (config.lr_schedule != 'step')
  small = resolve(load('pets_unet', 'smoke'))
  assert LINE.fullmatch(small.line()) and 'peak_lr=0.00025 ' in small.line()
  as_dict = json.loads(json.dumps(schedule.as_dict()))
  assert as_dict == {
    'steps': 64_000,
    'epochs': pytest.approx(64_000 / 390),
    'batch': 128,
    'peak_lr': 0.1,
    'warmup_steps': 400,
    'boundaries': [32_000, 48_000],
    'steps_per_epoch': 390,
  }


def test_schedule_in_steps_without_schedule_batch_and_conflicts():
  config = load('digits_lenet5')
  config.lr_schedule, config.num_train_steps = 'step', 100
  config.lr_boundaries_steps, config.warmup_steps = (50, 75), 10
  schedule = optim.resolve_schedule(config, 11)
  assert (schedule.steps, schedule.boundaries, schedule.warmup_steps) == (100, (50, 75), 10)
  lr = optim.learning_rate_schedule(config, schedule)
  assert [float(lr(s)) for s in (0, 5, 10, 49, 50, 75)] == pytest.approx(
    [0.0, 0.025, 0.05, 0.05, 0.005, 0.0005]
  )
  config.warmup_epochs = 1.0
  with pytest.raises(UserError, match='warmup_epochs=1.0 and warmup_steps=10'):
    optim.resolve_schedule(config, 11)
  config.warmup_epochs, config.lr_boundaries_epochs = 0.0, (5.0,)
  with pytest.raises(UserError, match='lr_boundaries_epochs'):
    optim.resolve_schedule(config, 11)
  config = load('cifar10_resnet')
  config.num_train_steps = -1  # CIFAR states its length in steps only
  with pytest.raises(UserError, match='num_epochs'):
    optim.resolve_schedule(config, 390)
  config = load('digits_lenet5')
  config.lr_schedule = 'poly'
  with pytest.raises(UserError, match='constant, cosine, step'):
    optim.resolve_schedule(config, 11)


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_bad_config_string_names_the_valid_forms(family):
  module = importlib.import_module(f'configs.{family}')
  with pytest.raises(ValueError, match='bad config string') as error:
    module.get_config('nonsense')
  message = str(error.value)
  assert family + '.py' in message and 'smoke' in message
  for arg in FAMILIES[family]:
    for word in filter(None, arg.split(',')):
      assert word.removesuffix('_b').removesuffix('_v1') in message, word
  with pytest.raises(ValueError, match='bad config string'):
    module.get_config('smoke,smoke')


def test_configs_do_not_import_train_lib():
  paths = glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
  assert [p for p in paths if 'train_lib' in open(p).read()] == []
  code = (
    'import glob, importlib, os, sys\n'
    "for p in sorted(glob.glob('configs/**/*.py', recursive=True)):\n"
    "  importlib.import_module(p[:-3].replace(os.sep, '.').removesuffix('.__init__'))\n"
    "assert not [m for m in sys.modules if m.startswith('train_lib')], sys.modules\n"
  )
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
