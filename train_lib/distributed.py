"""Joining a multi-process run: `jax.distributed.initialize()` when there is one.

Where JAX recognises the cluster (SLURM, Open MPI, Cloud TPU pods, Kubernetes) it finds
the coordinator, the number of processes and this process's id itself; elsewhere they
come from flags or from the environment variables JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID. A single process initializes nothing.
"""

import os

import jax

from train_lib.errors import UserError

ENV_ADDRESS = 'JAX_COORDINATOR_ADDRESS'
ENV_NUM_PROCESSES = 'JAX_NUM_PROCESSES'
ENV_PROCESS_ID = 'JAX_PROCESS_ID'


def _env_int(name: str) -> int | None:
  value = os.environ.get(name, '').strip()
  if not value:
    return None
  if not value.isdigit():
    raise UserError(f'{name}={value} is not a non-negative integer; fix or unset it')
  return int(value)


def detected_cluster():
  """The cluster environment JAX's auto-detection would use, or None.

  JAX exposes its detection only inside `initialize`, which also starts the runtime;
  asking the same classes first lets a one-process job skip the runtime (SLURM's
  detection would otherwise restrict a lone process to one GPU).
  """
  try:
    from jax._src import clusters

    candidates = clusters.ClusterEnv._cluster_types
  except (ImportError, AttributeError):
    return None
  for env in candidates:
    if not env.opt_in_only_method and env.is_env_present():
      return env
  return None


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> bool:
  """Calls `jax.distributed.initialize` if this is one process of several.

  Call before anything starts a JAX backend. Each argument left None is read from its
  environment variable; what is still missing is left to JAX's cluster detection.

  Args:
    coordinator_address: 'host:port' of process 0, reachable from every process.
    num_processes: how many processes the run has.
    process_id: this process's index, 0 .. num_processes - 1.

  Returns:
    Whether the distributed runtime was started.

  Raises:
    UserError: inconsistent or incomplete settings, or the coordinator is unreachable.
  """
  if jax.distributed.is_initialized():
    return True
  address = coordinator_address or os.environ.get(ENV_ADDRESS) or None
  count = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
  index = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
  cluster = detected_cluster()
  if address is None and count is None and index is None:
    if cluster is None or cluster.get_process_count() <= 1:
      return False
  elif count == 1 and index in (None, 0):
    return False
  elif cluster is None and None in (address, count, index):
    missing = [
      f'--{name} (or {env})'
      for name, env, v in (
        ('coordinator_address', ENV_ADDRESS, address),
        ('num_processes', ENV_NUM_PROCESSES, count),
        ('process_id', ENV_PROCESS_ID, index),
      )
      if v is None
    ]
    raise UserError(
      f'a multi-process run needs {", ".join(missing)} as well; give all '
      'three on every process, e.g. --coordinator_address=10.0.0.1:1234 '
      '--num_processes=2 --process_id=0'
    )
  if count is not None and index is not None and not 0 <= index < count:
    raise UserError(f'--process_id={index} must be in 0..{count - 1} for --num_processes={count}')
  # StopRequest (train_lib/preemption.py) turns SIGTERM into an agreed checkpoint and
  # stop; JAX's own preemption service would otherwise swallow SIGTERM outside it.
  jax.config.update('jax_enable_preemption_service', False)
  # CPU processes exchange data through gloo (the default in recent JAX releases).
  if 'JAX_CPU_COLLECTIVES_IMPLEMENTATION' not in os.environ:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  try:
    jax.distributed.initialize(address, count, index)
  except (RuntimeError, ValueError) as e:
    where = address or (cluster.__name__ if cluster else 'the coordinator')
    detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise UserError(
      f'could not join the distributed run at {where} ({detail}); check '
      'that process 0 is running and its address and port are reachable '
      'from every process'
    ) from None
  return True
