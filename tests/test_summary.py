"""Tests of train_lib/modes/costs.py: per-layer parameters and MACs, the table, XLA flops."""

import re
import time
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import pytest

from models import lenet
from train_lib.modes import costs as summary_lib


def by_path(summary):
  return {layer.path: layer for layer in summary.layers}


def test_lenet5_modern_reference_counts():
  s = summary_lib.summarize(lenet.LeNet5Modern(), (1, 32, 32, 1))
  # Reference: 61,706 parameters and 416,520 MACs (architectures.md, section 1c).
  assert s.total_params == 61_706
  assert s.total_macs == 416_520
  layers = by_path(s)
  expected = {
    # path: (type, output shape, params, MACs)
    'C1': ('Conv', (1, 28, 28, 6), 5 * 5 * 1 * 6 + 6, 28 * 28 * 6 * (5 * 5 * 1)),
    'C3': ('Conv', (1, 10, 10, 16), 5 * 5 * 6 * 16 + 16, 10 * 10 * 16 * (5 * 5 * 6)),
    'C5': ('Dense', (1, 120), 400 * 120 + 120, 400 * 120),
    'F6': ('Dense', (1, 84), 120 * 84 + 84, 120 * 84),
    'output': ('Dense', (1, 10), 84 * 10 + 10, 84 * 10),
  }
  assert list(layers) == list(expected)
  for path, (typ, shape, params, macs) in expected.items():
    assert (
      layers[path].type,
      layers[path].output_shapes,
      layers[path].params,
      layers[path].macs,
    ) == (typ, (shape,), params, macs), path
  assert layers['C1'].macs == 117_600


def test_lenet5_paper_counts():
  s = summary_lib.summarize(lenet.LeNet5(), (1, 32, 32, 1))
  assert s.total_params == 60_840
  c1 = 28 * 28 * 6 * (5 * 5 * 1)  # 117,600
  c3 = 10 * 10 * 60 * (5 * 5)  # 60 connections of Table I, 5x5 each: 150,000
  c5 = 1 * 1 * 120 * (5 * 5 * 16)  # 48,000
  f6 = 120 * 84  # 10,080
  rbf = 84 * 10  # the x . w_i term of the RBF units: 840
  expected_macs = {'C1': c1, 'S2': 0, 'C3': c3, 'S4': 0, 'C5': c5, 'F6': f6, 'output': rbf}
  expected_params = {
    'C1': 156,
    'S2': 12,
    'C3': 1_516,
    'S4': 32,
    'C5': 48_120,
    'F6': 10_164,
    'output': 840,
  }
  layers = by_path(s)
  assert {p: layer.macs for p, layer in layers.items()} == expected_macs
  assert {p: layer.params for p, layer in layers.items()} == expected_params
  assert layers['C3'].type == 'PartialConv'
  assert s.total_macs == 326_520 == sum(expected_macs.values())


def test_per_example_counts_do_not_depend_on_batch():
  one = summary_lib.summarize(lenet.LeNet5(), (1, 32, 32, 1))
  four = summary_lib.summarize(lenet.LeNet5(), (4, 32, 32, 1))
  assert [(layer.path, layer.params, layer.macs) for layer in one.layers] == [
    (layer.path, layer.params, layer.macs) for layer in four.layers
  ]


class TinyConvs(nn.Module):
  """A grouped conv, a strided conv and a transposed conv, with BN and dropout."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.Conv(16, (3, 3), feature_group_count=4, padding='SAME', name='grouped')(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name='bn')(x)
    x = nn.Dropout(0.5, deterministic=not train)(x)
    x = nn.Conv(32, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), name='strided')(x)
    return nn.ConvTranspose(8, (4, 4), strides=(2, 2), padding='SAME', name='up')(x)


@pytest.mark.parametrize('train', [False, True])
def test_grouped_strided_transposed(train):
  s = summary_lib.summarize(TinyConvs(), (1, 16, 16, 8), train=train)
  layers = by_path(s)
  grouped = 16 * 16 * 16 * (3 * 3 * 8 // 4)  # each output sees in_c / groups = 2 maps
  strided = 8 * 8 * 32 * (3 * 3 * 16)  # 8x8 output positions after stride 2
  up = 8 * 8 * 32 * (4 * 4 * 8)  # every input value scattered through a 4x4x8 kernel
  assert (grouped, strided, up) == (73_728, 294_912, 262_144)
  assert layers['grouped'].macs == grouped
  assert layers['strided'].macs == strided
  assert layers['up'].macs == up
  assert layers['bn'].macs == 0
  assert layers['grouped'].output_shapes == ((1, 16, 16, 16),)
  assert layers['strided'].output_shapes == ((1, 8, 8, 32),)
  assert layers['up'].output_shapes == ((1, 16, 16, 8),)
  assert layers['grouped'].params == 3 * 3 * 2 * 16 + 16
  assert layers['bn'].params == 2 * 16  # scale and bias; running stats are not params
  assert layers['up'].params == 4 * 4 * 32 * 8 + 8
  assert s.total_params == 304 + 32 + 4_640 + 4_104
  assert s.total_macs == grouped + strided + up


class Shared(nn.Module):
  """A parent with its own parameter, a module called twice and a method call."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    scale = self.param('scale', nn.initializers.ones, (x.shape[-1],))
    dense = nn.Dense(x.shape[-1], name='shared')
    x = dense(dense(x * scale))
    return Head(name='head').logits(x)


class Head(nn.Module):
  """Called through a method other than __call__."""

  @nn.compact
  def logits(self, x):
    return nn.Dense(3, name='fc')(x)


def test_rows_add_up_with_sharing_and_methods():
  s = summary_lib.summarize(Shared(), (2, 5, 4))
  layers = by_path(s)
  assert layers[''].params == 4 and layers[''].type == 'Shared'
  shared = [layer for layer in s.layers if layer.path == 'shared']
  # Two calls: the weights are owned once, the work is done twice (5 positions each).
  assert [layer.params for layer in shared] == [4 * 4 + 4, 0]
  assert [layer.macs for layer in shared] == [5 * 4 * 4, 5 * 4 * 4]
  assert layers['head'].type == 'Head.logits'
  assert layers['head/fc'].macs == 5 * 4 * 3
  assert s.total_params == 4 + 20 + 15 == sum(layer.params for layer in s.layers)
  assert s.total_macs == 2 * 80 + 60


def test_format_last_line_and_separators():
  text = summary_lib.format_summary(summary_lib.summarize(lenet.LeNet5Modern(), (1, 32, 32, 1)))
  lines = text.splitlines()
  assert lines[-1] == 'total_params=61706 total_macs=416520'
  assert re.fullmatch(r'total_params=\d+ total_macs=\d+', lines[-1])
  c3 = next(line for line in lines if line.startswith('C3 '))
  assert c3.split() == ['C3', 'Conv', '10x10x16', '2,416', '240,000']
  assert 'Total params: 61,706' in text


class ValidConvs(nn.Module):
  """Convolutions without padding, so every tap XLA counts is a MAC here."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    x = nn.relu(nn.Conv(16, (3, 3), padding='VALID')(x))
    x = nn.relu(nn.Conv(32, (3, 3), strides=(2, 2), padding='VALID')(x))
    return nn.Conv(8, (1, 1), feature_group_count=8)(x)


@pytest.mark.parametrize(
  'model', [ValidConvs(), lenet.LeNet5Modern()], ids=['valid_convs', 'lenet5_modern']
)
def test_xla_cross_check(model):
  s = summary_lib.summarize(
    model, (1, 32, 32, 3 if isinstance(model, ValidConvs) else 1), cross_check=True
  )
  # XLA counts 2 flops per multiply-accumulate, plus biases and activations.
  assert 2 * s.total_macs <= s.xla_flops <= 3 * s.total_macs
  assert 'XLA flops' in summary_lib.format_summary(s)


class HugeDense(nn.Module):
  """Three 100,000 x 100,000 layers: 120 GB of float32 if anything were allocated."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    for i in range(3):
      x = nn.Dense(100_000, name=f'fc{i}')(x)
    return x


def test_summarizing_does_not_allocate():
  start = time.perf_counter()
  s = summary_lib.summarize(HugeDense(), (1, 100_000))
  assert time.perf_counter() - start < 20
  assert s.total_params == 3 * (100_000 * 100_000 + 100_000)
  assert s.total_macs == 3 * 100_000 * 100_000
