"""`--mode=summary` on the zoo's configs: totals against the reference numbers.

References: ../shared/reference/architectures.md (torchvision num_params and _ops, the
ResNet paper's CIFAR counts, v1 MACs by analytic count).
"""

import importlib

import pytest

from train_lib.modes import summary

CASES = [
  # config, string, params, GMACs (reference)
  ('imagenet_resnet', '50', 25_557_032, 4.089),
  ('imagenet_resnet', '50_v1', 25_557_032, 3.858),
  ('imagenet_resnet', '18', 11_689_512, 1.814),
  ('imagenet_resnet', 'plain18', 11_515_688, 1.795),
  ('cifar10_resnet', '20', 269_722, 0.04055),
  ('cifar10_resnet', '20_b', 272_474, None),
  ('cifar10_resnet', '110', 1_727_962, 0.25289),
  ('imagenet_vgg', '16', 138_357_544, 15.470),
  ('imagenet_vgg', '16_c', 133_638_952, 11.771),
  ('imagenet_alexnet', '', 61_100_840, 0.714),
  ('imagenet_alexnet', 'original', 60_965_224, 0.724),
]


@pytest.mark.parametrize('module,arg,params,gmacs', CASES)
def test_summary_totals(module, arg, params, gmacs, capsys):
  get_config = importlib.import_module(f'configs.{module}').get_config
  config = get_config(arg) if arg else get_config()
  result = summary.print_model_summary(config)
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert last == f'total_params={result.total_params} total_macs={result.total_macs}'
  assert result.total_params == params
  if gmacs is not None:
    assert abs(result.total_macs / 1e9 - gmacs) / gmacs < 0.01
