"""Shared test helpers: running main.py as a user would, reading metrics.jsonl."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Compile-time options only (the same program, computed the same): XLA:CPU's compiler
# dominates the model tests, and LLVM at -O0 with the older elemental emitters for fusions
# makes it several times faster on jaxlib 0.10. Each is kept only where the running jaxlib
# accepts it (0.12 dropped xla_cpu_use_fusion_emitters), so no test depends on one.
FAST_COMPILE_CANDIDATES = {
  'xla_backend_optimization_level': 0,
  'xla_cpu_use_fusion_emitters': False,
  'xla_llvm_disable_expensive_passes': True,
}


def fast_compile_options() -> dict:
  """FAST_COMPILE_CANDIDATES that the running jaxlib accepts on the CPU."""
  from train_lib import system

  return system.supported_xla_options(FAST_COMPILE_CANDIDATES, 'cpu')


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


def start_main(*flags: str) -> subprocess.Popen:
  """Starts `python main.py FLAGS...` in the background, its output piped."""
  return subprocess.Popen(
    main_command(*flags),
    cwd=ROOT,
    env=main_env(),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
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


def run_main_in_process(*flags_: str) -> subprocess.CompletedProcess:
  """main.py's entry point on one command line, in this process (no start-up cost).

  For command lines that stop before training (bad input): absl's flags are parsed
  afresh, stdout and stderr captured, SystemExit turned into the return code, and the
  JAX settings that main.py may change are put back afterwards.
  """
  import contextlib
  import io
  import traceback

  import jax
  from absl import flags

  import main

  saved = {name: getattr(jax.config, name) for name in _JAX_SETTINGS}
  saved_argv = sys.argv
  sys.argv = ['main.py', *flags_]  # config_flags reads the overrides from sys.argv
  out, err, code = io.StringIO(), io.StringIO(), 0
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      for name in [n for n in flags.FLAGS if n.startswith('config.')]:
        delattr(flags.FLAGS, name)  # config_flags registers these per config file
      # config_flags loads the file as module 'config_config' with load_module(), which
      # runs it inside an existing module of that name: start from none.
      sys.modules.pop('config_config', None)
      flags.FLAGS.unparse_flags()
      main.main(main._parse_flags(sys.argv))
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except Exception:  # noqa: BLE001 - reported as the traceback a user would see
      traceback.print_exc()
      code = 1
    finally:
      sys.argv = saved_argv
      for name, value in saved.items():
        jax.config.update(name, value)
  return subprocess.CompletedProcess(['main.py', *flags_], code, out.getvalue(), err.getvalue())


_JAX_SETTINGS = (
  'jax_compilation_cache_dir',
  'jax_persistent_cache_min_compile_time_secs',
  'jax_persistent_cache_min_entry_size_bytes',
)
