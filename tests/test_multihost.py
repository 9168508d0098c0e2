"""Several processes train like one: jax.distributed on 127.0.0.1, CPU, gloo collectives.

The end-to-end test starts two processes of main.py with 4 simulated devices each and
compares them with one process of 8 devices; the others check the pieces in-process.
"""

import os
import re
import signal
import socket
import subprocess
import time

import jax
import numpy as np
import pytest
from helpers import ROOT, main_command, main_env, read_metrics

from configs import digits_lenet5
from input_pipeline import batches, datasets
from train_lib import distributed, train
from train_lib.errors import UserError

STEPS = 16
# The host feed: each process makes only its slice of every batch.
OVERRIDES = {
  'input.feed': 'host',
  'batch_size': 64,
  'eval_batch_size': 64,
  'num_train_steps': STEPS,
  'log_every_steps': 1,
  'eval_every_steps': 1000,
  'checkpoint_every_steps': 1000,
}
TIMEOUT = 240  # seconds for any one run; the processes are killed after it


def _flags(data_dir, workdir):
  return [
    '--config=configs/digits_lenet5.py',
    f'--config.dataset.data_dir={data_dir}',
    *[f'--config.{k}={v}' for k, v in OVERRIDES.items()],
    f'--workdir={workdir}',
  ]


def _config(data_dir):
  config = digits_lenet5.get_config()
  config.dataset.data_dir = data_dir
  for field, value in OVERRIDES.items():
    parent, _, name = field.rpartition('.')
    setattr(config[parent] if parent else config, name, value)
  return config


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class _Processes:
  """Processes of main.py, each in its own process group, all killed on exit."""

  def __init__(self, log_dir):
    self._log_dir, self._procs, self._logs = log_dir, [], []

  def start_two(self, data_dir, workdir, run):
    """Processes 0 and 1 of a run, 4 CPU devices each, coordinated on 127.0.0.1.

    No compilation cache: JAX 0.10 reads it on process 0 only, which would then run
    ahead, and gloo gives a process 30 s to join a collective.
    """
    port = _free_port()
    for i in range(2):
      out, err = (open(os.path.join(self._log_dir, f'{run}_{i}.{x}'), 'w+') for x in ('out', 'err'))
      self._logs.append((out, err))
      self._procs.append(
        subprocess.Popen(
          main_command(
            *_flags(data_dir, workdir),
            '--config.compilation_cache_dir=none',
            f'--coordinator_address=127.0.0.1:{port}',
            '--num_processes=2',
            f'--process_id={i}',
          ),
          cwd=ROOT,
          env=main_env(4),
          stdout=out,
          stderr=err,
          text=True,
          start_new_session=True,
        )
      )
    return self._procs[-2:]

  def wait(self, procs, timeout=TIMEOUT):
    """Waits for `procs`; returns their (returncode, stdout, stderr)."""
    deadline, results = time.time() + timeout, []
    for p in procs:
      p.wait(timeout=max(1, deadline - time.time()))
      out, err = self._logs[self._procs.index(p)]
      out.seek(0), err.seek(0)
      results.append((p.returncode, out.read(), err.read()))
    return results

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for p in self._procs:
      if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    for out, err in self._logs:
      out.close(), err.close()


def _wait_for_train_row(workdir, step, procs, timeout=TIMEOUT):
  path, deadline = os.path.join(workdir, 'metrics.jsonl'), time.time() + timeout
  while time.time() < deadline and all(p.poll() is None for p in procs):
    if os.path.exists(path) and any(
      r['split'] == 'train' and r['step'] >= step for r in read_metrics(workdir)
    ):
      return True
    time.sleep(0.02)
  return False


def test_two_processes_train_like_one_and_resume_after_sigterm(data_dir, tmp_path):
  config = _config(data_dir)
  datasets.get_builder(config.dataset)  # prepared once, before the processes read it
  ref_dir, multi_dir = str(tmp_path / 'one'), str(tmp_path / 'two')
  with _Processes(str(tmp_path)) as procs:
    first = procs.start_two(data_dir, multi_dir, 'first')
    # SIGTERM to process 1 only: both agree to stop after the same step.
    assert _wait_for_train_row(multi_dir, 2, first), procs.wait(first)
    first[1].send_signal(signal.SIGTERM)
    stopped = procs.wait(first)
    for code, _, err in stopped:
      assert code == 3, err
    messages = [err.split('stopped by ')[1].split(';')[0] for _, _, err in stopped]
    assert messages[0].startswith('SIGTERM on process 1 after step'), messages
    assert messages[1].startswith('SIGTERM after step'), messages
    stop_step = int(messages[1].split('after step ')[1])
    assert messages[0].endswith(f'after step {stop_step}')
    saved = [int(n) for n in os.listdir(os.path.join(multi_dir, 'checkpoints')) if n.isdigit()]
    assert saved == [stop_step] and stop_step < STEPS

    second = procs.start_two(data_dir, multi_dir, 'resumed')
    # Meanwhile the reference: one process, 8 devices.
    train.train_and_evaluate(config, ref_dir)
    resumed = procs.wait(second)
    for code, _, err in resumed:
      assert code == 0, err
    assert f'resumed from step {stop_step}' in resumed[0][1]
    for quiet in ('resumed from', 'training ', '| train |', '| test |'):  # process 1
      assert quiet not in resumed[1][1], resumed[1][1]

  one, two = read_metrics(ref_dir), read_metrics(multi_dir)
  # Only process 0 wrote: each step once, across the stopped and the resumed run.
  assert [r['step'] for r in two if r['split'] == 'train'] == list(range(1, STEPS + 1))
  for split in ('train', 'test'):
    a = [r['loss'] for r in one if r['split'] == split]
    b = [r['loss'] for r in two if r['split'] == split]
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
  assert abs(one[-1]['accuracy'] - two[-1]['accuracy']) < 1e-4


@pytest.mark.parametrize('num_examples', [40, 37])
def test_process_slices_make_the_global_batch(monkeypatch, num_examples):
  data = {
    'image': np.arange(num_examples, dtype=np.uint8).reshape(-1, 1, 1, 1),
    'label': np.arange(num_examples, dtype=np.int32),
  }

  def per_process(make):
    parts = []
    for index in range(2):
      monkeypatch.setattr(jax, 'process_count', lambda: 2)
      monkeypatch.setattr(jax, 'process_index', lambda i=index: i)
      parts.append(make())
    monkeypatch.undo()
    return parts

  def train():  # 6 steps from step 3, across an epoch boundary
    it = batches.train_batches(data, 8, seed=3, start_step=3)
    return [next(it)['label'] for _ in range(6)]

  single = train()
  parts = per_process(train)
  for step in range(6):
    np.testing.assert_array_equal(np.concatenate([parts[0][step], parts[1][step]]), single[step])
    assert len(parts[0][step]) == 4
  evals = per_process(lambda: list(batches.eval_batches(data, 16)))
  seen = [b['label'][b['mask'] > 0] for part in evals for b in part]
  assert sorted(np.concatenate(seen).tolist()) == list(range(num_examples))
  assert len(evals[0]) == len(evals[1])  # every process runs every eval step


class _FakeCluster:
  """Stands for a cluster environment JAX detects (SLURM, TPU pod ...)."""

  def __init__(self, count):
    self._count = count

  def get_process_count(self):
    return self._count


@pytest.fixture
def init_calls(monkeypatch):
  """Records jax.distributed.initialize's calls instead of making them."""
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda *a: calls.append(a))
  monkeypatch.setattr(jax.config, 'update', lambda *a: None)
  monkeypatch.setattr(distributed, 'detected_cluster', lambda: None)
  for name in (distributed.ENV_ADDRESS, distributed.ENV_NUM_PROCESSES, distributed.ENV_PROCESS_ID):
    monkeypatch.delenv(name, raising=False)
  return calls


def test_initialize_from_flags_and_environment(init_calls, monkeypatch):
  assert not distributed.initialize()  # one process: nothing to join
  assert not distributed.initialize('10.0.0.1:1234', 1, 0)
  assert distributed.initialize('10.0.0.1:1234', 2, 1)
  monkeypatch.setenv(distributed.ENV_ADDRESS, '10.0.0.2:99')
  monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, '4')
  monkeypatch.setenv(distributed.ENV_PROCESS_ID, '3')
  assert distributed.initialize()
  assert distributed.initialize(process_id=2)  # a flag wins over its variable
  assert init_calls == [('10.0.0.1:1234', 2, 1), ('10.0.0.2:99', 4, 3), ('10.0.0.2:99', 4, 2)]


def test_initialize_on_a_detected_cluster(init_calls, monkeypatch):
  monkeypatch.setattr(distributed, 'detected_cluster', lambda: _FakeCluster(1))
  assert not distributed.initialize()  # a one-task job runs as one process
  monkeypatch.setattr(distributed, 'detected_cluster', lambda: _FakeCluster(16))
  assert distributed.initialize()
  assert distributed.initialize(coordinator_address='10.0.0.1:1234')  # JAX fills in
  assert init_calls == [(None, None, None), ('10.0.0.1:1234', None, None)]


@pytest.mark.parametrize(
  'kwargs, env, message',
  [
    (
      {'num_processes': 2, 'process_id': 0},
      {},
      '--coordinator_address (or JAX_COORDINATOR_ADDRESS) as well',
    ),
    (
      {'coordinator_address': '10.0.0.1:1234'},
      {},
      '--num_processes (or JAX_NUM_PROCESSES), --process_id',
    ),
    (
      {'coordinator_address': 'h:1', 'num_processes': 2, 'process_id': 2},
      {},
      '--process_id=2 must be in 0..1',
    ),
    ({}, {'JAX_NUM_PROCESSES': 'two'}, 'JAX_NUM_PROCESSES=two is not'),
  ],
)
def test_initialize_names_what_is_missing(init_calls, monkeypatch, kwargs, env, message):
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  with pytest.raises(UserError, match=re.escape(message)):
    distributed.initialize(**kwargs)
  assert not init_calls
