"""How XLA compiles for us: the persistent compilation cache and the GPU's XLA flags.

Both must be set before the first compilation (the flags before the backend starts), so
main.py calls `configure` first thing.
"""

import importlib.util
import os

import jax
import ml_collections

# XLA flags for NVIDIA GPUs, added to XLA_FLAGS only when a CUDA backend is present and
# only where the user's XLA_FLAGS does not set the same flag.
# - the latency-hiding scheduler overlaps the gradients' all-reduce with the backward
#   pass on several GPUs (a no-op on one).
# Not yet measured on a GPU here; see README "Performance".
GPU_XLA_FLAGS = ('--xla_gpu_enable_latency_hiding_scheduler=true',)

DISABLED = 'none'


def cache_dir(config: ml_collections.ConfigDict, workdir: str | None) -> str | None:
  """The persistent compilation cache's directory, or None for no cache.

  Args:
    config: its `compilation_cache_dir`: '' for `<parent of workdir>/.jax_cache`
      (shared by the runs beside it), 'none' for no cache, or a directory.
    workdir: the run's directory; without one (bench, summary) only an explicit
      `compilation_cache_dir` gives a cache.

  Returns:
    An absolute path, or None.
  """
  chosen = config.compilation_cache_dir
  if chosen == DISABLED:
    return None
  if chosen:
    return os.path.abspath(os.path.expanduser(chosen))
  if not workdir:
    return None
  return os.path.join(os.path.dirname(os.path.abspath(workdir.rstrip('/'))), '.jax_cache')


def _cuda_backend_expected() -> bool:
  """Whether JAX will start a CUDA backend, judged without starting any backend."""
  platforms = os.environ.get('JAX_PLATFORMS', '') or (jax.config.jax_platforms or '')
  if platforms and not any(p in platforms for p in ('cuda', 'gpu')):
    return False
  return any(
    importlib.util.find_spec(m) is not None for m in ('jax_cuda12_plugin', 'jax_cuda13_plugin')
  )


def add_gpu_xla_flags() -> list[str]:
  """Appends GPU_XLA_FLAGS to XLA_FLAGS if a CUDA backend is coming; returns those added.

  Takes effect only if called before JAX starts its backends.
  """
  if not _cuda_backend_expected():
    return []
  current = os.environ.get('XLA_FLAGS', '')
  added = [f for f in GPU_XLA_FLAGS if f.split('=')[0] not in current]
  if added:
    os.environ['XLA_FLAGS'] = ' '.join([current, *added]).strip()
  return added


def configure(config: ml_collections.ConfigDict, workdir: str | None) -> str | None:
  """Sets the persistent compilation cache and the GPU's XLA flags; returns the cache dir.

  A restarted or resumed run then loads its compiled steps instead of compiling them
  again. JAX caches only compilations that took at least
  `jax_persistent_cache_min_compile_time_secs` (1 s by default), so tiny programs are
  not written.
  """
  add_gpu_xla_flags()
  directory = cache_dir(config, workdir)
  if directory:
    jax.config.update('jax_compilation_cache_dir', directory)
  return directory
