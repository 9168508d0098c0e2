"""Shared test helpers: running main.py as a user would, reading metrics.jsonl."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main_env(num_devices: int = 8) -> dict[str, str]:
  env = dict(os.environ)
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={num_devices}'
  env['JAX_PLATFORMS'] = 'cpu'
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  return env


def main_command(*flags: str) -> list[str]:
  return [sys.executable, os.path.join(ROOT, 'main.py'), *flags]


def run_main(*flags: str, num_devices: int = 8, timeout: int = 300) -> subprocess.CompletedProcess:
  """Runs `python main.py FLAGS...` to completion and returns the result."""
  return subprocess.run(
    main_command(*flags),
    cwd=ROOT,
    env=main_env(num_devices),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
  """One `error:` line naming the problem, non-zero exit, no traceback."""
  assert result.returncode != 0, result.stdout + result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1, result.stderr
  assert 'Traceback' not in result.stderr, result.stderr
  for fragment in fragments:
    assert fragment in errors[0], errors[0]
