"""Test set-up: CPU with 8 simulated devices, so sharding is really exercised."""

import os
import sys

# Before jax is imported anywhere.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# Triton (torch's GPU compiler, unused by the PyTorch reference models of the tests)
# segfaults on import in a process that has loaded jaxlib and TensorFlow: keep it out.
sys.modules.setdefault('triton', None)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope='session', autouse=True)
def compilation_cache(tmp_path_factory):
  """Runs that compile the same steps (resume, eval) reuse the first compilation."""
  jax.config.update('jax_compilation_cache_dir', str(tmp_path_factory.mktemp('jaxcache')))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  """A TFDS data dir shared by the session's tests (the digits prepare in ~1 s)."""
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture
def digits_config(data_dir):
  """The default job's config, shrunk to a few steps for tests."""
  from configs import digits_lenet5

  config = digits_lenet5.get_config()
  config.dataset.data_dir = data_dir
  config.batch_size = 64
  config.eval_batch_size = 64
  config.num_train_steps = 8
  config.log_every_steps = 1
  config.eval_every_steps = 4
  config.checkpoint_every_steps = 4
  return config
