"""XLA options are checked against the running jaxlib: an unknown 'auto' option is left out
with one note, an unknown option of the user's is one error line naming it."""

import pytest
from helpers import assert_user_error, run_main

from train_lib import system
from train_lib.errors import UserError


def _config(xla_options: str):
  from configs import digits_lenet5

  config = digits_lenet5.get_config()
  config.system.xla_options = xla_options
  return config


def test_option_refusal_is_checked_once_per_option():
  system.option_refusal.cache_clear()
  assert system.option_refusal('cpu', 'xla_backend_optimization_level', 0) is None
  refusal = system.option_refusal('cpu', 'xla_no_such_option', True)
  assert 'xla_no_such_option' in refusal
  assert system.option_refusal('cpu', 'xla_backend_optimization_level', 'fast') is not None
  assert system.option_refusal.cache_info().misses == 3
  system.option_refusal('cpu', 'xla_no_such_option', True)
  assert system.option_refusal.cache_info().hits == 1
  assert system.supported_xla_options(
    {'xla_no_such_option': True, 'xla_backend_optimization_level': 0}, 'cpu'
  ) == {'xla_backend_optimization_level': 0}


def test_auto_leaves_out_an_unknown_option_with_one_note(monkeypatch, capsys):
  auto = {'xla_no_such_option': True, **system.AUTO_XLA_OPTIONS['cpu']}
  monkeypatch.setitem(system.AUTO_XLA_OPTIONS, 'cpu', auto)
  system._auto_xla_options.cache_clear()
  try:
    for _ in range(3):
      assert system.xla_options(_config('auto'), 'cpu') == {
        'xla_cpu_experimental_ynn_fusion_type': ''
      }
  finally:
    system._auto_xla_options.cache_clear()
  notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith('note:')]
  assert len(notes) == 1 and 'xla_no_such_option' in notes[0], notes


def test_an_unknown_user_option_is_a_user_error():
  with pytest.raises(UserError, match="refuses 'xla_no_such_option' on cpu"):
    system.xla_options(_config('xla_cpu_enable_fast_math=false,xla_no_such_option=1'), 'cpu')
  with pytest.raises(UserError, match="refuses 'xla_cpu_enable_fast_math'.*not a valid bool"):
    system.xla_options(_config('xla_cpu_enable_fast_math=3'), 'cpu')


def test_main_names_the_unknown_option_before_training(tmp_path):
  result = run_main(
    '--config=configs/cifar10_resnet.py:20',
    '--mode=bench',
    '--config.batch_size=8',
    '--config.system.xla_options=xla_no_such_option=1',
    f'--workdir={tmp_path}/run',
  )
  assert_user_error(result, 'xla_no_such_option', '--config.system.xla_options')
