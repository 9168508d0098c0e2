"""--mode=bench, the compile-once guarantee and the persistent compilation cache."""

import os
import re
import subprocess

import jax
import pytest
from helpers import ROOT, main_command, main_env

from configs import digits_lenet5
from train_lib import compilation
from train_lib.modes import bench

LAST_LINE = re.compile(r'images_per_sec=(\d+\.\d+) compile_seconds=(\d+\.\d+)')


def _tiny_bench_config():
  config = digits_lenet5.get_config()
  config.model.name = 'lenet5_modern'  # the quickest to compile
  config.input.crop_padding = 0
  config.batch_size = 16
  config.bench_warmup_steps = 1
  config.bench_steps = 3
  return config


# A tiny model, no augmentation, few steps: what the subprocess runs compile and time.
TINY_FLAGS = (
  '--config=configs/digits_lenet5.py',
  '--mode=bench',
  '--config.model.name=lenet5_modern',
  '--config.input.crop_padding=0',
  '--config.batch_size=16',
  '--config.bench_steps=2',
  '--config.bench_warmup_steps=1',
)


def test_bench_mode_needs_no_data_or_workdir_and_a_restart_loads_from_cache(tmp_path):
  """Two runs of main.py: the report and its last line; then the persistent cache."""
  env = main_env()
  env['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'  # cache even quick compiles
  cache, empty = str(tmp_path / 'cache'), str(tmp_path / 'no_data_here')

  def run(*flags):
    return subprocess.run(
      main_command(*TINY_FLAGS, f'--config.compilation_cache_dir={cache}', *flags),
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )

  first = run(f'--config.dataset.data_dir={empty}')
  assert first.returncode == 0, first.stderr
  lines = first.stdout.strip().splitlines()
  match = LAST_LINE.fullmatch(lines[-1])
  assert match, lines[-1]
  assert float(match[1]) > 0 and float(match[2]) > 0
  assert 'recompilations after the first step: 0' in first.stdout
  assert 'unknown peak' in first.stdout  # CPUs have no entry in the peak table
  assert 'persistent compilation cache' not in first.stdout
  assert not os.path.exists(empty)
  assert any(name.startswith('jit_train_step') for name in os.listdir(cache))

  workdir = str(tmp_path / 'run')
  second = run(f'--workdir={workdir}')  # accepted, and nothing is written there
  assert second.returncode == 0, second.stderr
  assert LAST_LINE.fullmatch(second.stdout.strip().splitlines()[-1])
  assert 'compile: ' in second.stdout
  assert 'loaded from the persistent compilation cache' in second.stdout
  assert not os.path.exists(workdir)


@pytest.fixture(scope='module')
def one_step_per_call():
  return bench.benchmark(_tiny_bench_config(), jax.devices()[:2])


def test_bench_steps_do_not_recompile(one_step_per_call):
  result = one_step_per_call
  assert result.recompilations == 0
  assert (result.timed_steps, result.warmup_steps) == (3, 1)
  assert result.flops_per_step > 0 and result.step_seconds > 0
  assert result.images_per_sec == pytest.approx(16 / result.step_seconds)


def test_bench_several_steps_per_call(one_step_per_call):
  config = _tiny_bench_config()
  config.steps_per_call = 2
  result = bench.benchmark(config, jax.devices()[:2])
  assert result.recompilations == 0
  assert result.timed_steps == 4  # 3 rounded up to whole calls
  # The unrolled program holds 2 steps: per step, the flops of one.
  assert result.flops_per_step == pytest.approx(one_step_per_call.flops_per_step, rel=0.05)


def test_peak_table_and_mfu():
  assert bench.peak_flops('NVIDIA H100 80GB HBM3', True) == 989e12
  assert bench.peak_flops('NVIDIA H100 PCIe', True) == 756e12
  assert bench.peak_flops('NVIDIA A100-SXM4-40GB', False) == 156e12
  assert bench.peak_flops('NVIDIA L40S', True) == 362e12
  assert bench.peak_flops('TPU v5 lite', True) == 197e12
  assert bench.peak_flops('cpu', False) is None
  result = bench.BenchResult(
    step_seconds=0.01,
    timed_steps=1,
    warmup_steps=0,
    images_per_sec=1.0,
    compile_seconds=1.0,
    flops_per_step=1e12,
    peak_flops=200e12,
    recompilations=0,
    from_cache=False,
  )
  assert result.mfu == pytest.approx(0.5)


def test_cache_dir_choice(tmp_path):
  config = _tiny_bench_config()
  workdir = str(tmp_path / 'runs' / 'a')
  assert compilation.cache_dir(config, workdir) == str(tmp_path / 'runs' / '.jax_cache')
  assert compilation.cache_dir(config, workdir + '/') == str(tmp_path / 'runs' / '.jax_cache')
  assert compilation.cache_dir(config, None) is None
  config.compilation_cache_dir = str(tmp_path / 'mine')
  assert compilation.cache_dir(config, workdir) == str(tmp_path / 'mine')
  config.compilation_cache_dir = 'none'
  assert compilation.cache_dir(config, workdir) is None


def test_gpu_flags_only_with_a_cuda_backend(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  assert compilation.add_gpu_xla_flags() == []
  assert os.environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=8'


def test_bench_rejects_a_batch_the_devices_cannot_split():
  config = _tiny_bench_config()
  config.batch_size = 12
  with pytest.raises(bench.UserError, match='batch_size=12'):
    bench.benchmark(config)
