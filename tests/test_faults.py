"""Faults a long run meets: a second run in its workdir, a lock left by a killed run, a
full disk, a workdir that vanishes, a signal during a checkpoint commit
(docs/robustness.md)."""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
from helpers import (
  assert_user_error,
  read_metrics,
  run_main_in_process,
  start_main,
)

from train_lib import checkpoint, train
from train_lib import workdir as workdir_lib
from train_lib.errors import UserError

STEPS = 16


def _flags(data_dir, workdir, *more):
  return [
    '--config=configs/digits_lenet5.py',
    f'--config.dataset.data_dir={data_dir}',
    '--config.batch_size=64',
    f'--config.num_train_steps={STEPS}',
    '--config.log_every_steps=4',
    '--config.checkpoint_every_steps=2',
    '--config.eval_every_steps=8',
    f'--workdir={workdir}',
    *more,
  ]


def _start(data_dir, workdir):
  return start_main(*_flags(data_dir, workdir))


def _wait_until(proc, predicate, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if predicate():
      return True
    time.sleep(0.005)
  return False


def _final_test_row(workdir):
  return [r for r in read_metrics(workdir) if r['split'] == 'test'][-1]


def _lock_of(workdir):
  with open(os.path.join(workdir, workdir_lib.LOCK_FILE)) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """One parent directory for the runs here, so that they share one compilation cache
  (DIR/../.jax_cache), in this process and in the subprocesses."""
  return tmp_path_factory.mktemp('runs')


@pytest.fixture(scope='module')
def reference(data_dir, runs):
  """The metrics rows of an undisturbed run of `_flags`."""
  workdir = str(runs / 'reference')
  result = run_main_in_process(*_flags(data_dir, workdir))
  assert result.returncode == 0, result.stderr
  return read_metrics(workdir)


def _same_rows(rows, reference):
  """The same (step, split) rows in the same order, with the same metrics."""
  drop = ('images_per_sec',)
  strip = lambda r: {k: v for k, v in r.items() if k not in drop}  # noqa: E731
  assert [strip(r) for r in rows] == [strip(r) for r in reference]


def test_a_second_run_in_the_workdir_is_refused_at_once(data_dir, runs, reference):
  workdir = str(runs / 'second_run')
  first = _start(data_dir, workdir)
  assert _wait_until(first, lambda: os.path.exists(os.path.join(workdir, 'run.lock')))
  started = time.time()
  second = run_main_in_process(*_flags(data_dir, workdir))
  assert time.time() - started < 10
  assert_user_error(
    second, 'is in use by another run', f'host {socket.gethostname()}', f'process {first.pid}'
  )
  assert second.returncode == 2
  _, stderr = first.communicate(timeout=240)
  assert first.returncode == 0, stderr
  _same_rows(read_metrics(workdir), reference)  # each row once, in order, the same values
  assert not os.path.exists(os.path.join(workdir, 'run.lock'))

  # Read-only modes need no lock and leave the run's files alone.
  with open(os.path.join(workdir, 'run.lock'), 'w') as f:
    json.dump({'host': socket.gethostname(), 'pid': os.getppid(), 'started': 'now'}, f)

  def files():
    return sorted(os.listdir(workdir)) + sorted(os.listdir(f'{workdir}/checkpoints'))

  before, rows = files(), read_metrics(workdir)
  result = run_main_in_process(*_flags(data_dir, workdir), '--mode=eval')
  assert result.returncode == 0, result.stderr
  assert f'eval of step {STEPS}' in result.stdout
  assert sorted(files()) == sorted(before + [f'eval_{STEPS}.json'])
  assert read_metrics(workdir) == rows


def test_a_lock_left_by_a_dead_run_is_taken_over(tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  path = os.path.join(workdir, workdir_lib.LOCK_FILE)
  dead = subprocess.Popen(['true'])
  dead.wait()
  host = socket.gethostname()

  def leave(**holder):
    with open(path, 'w') as f:
      json.dump({'host': host, 'started': '2026-01-01 00:00:00 UTC', **holder}, f)

  leave(pid=dead.pid, boot_id=workdir_lib._boot_id())
  with workdir_lib.lock(workdir):
    assert _lock_of(workdir)['pid'] == os.getpid()
  assert f'process {dead.pid} is not running' in capsys.readouterr().out
  assert not os.path.exists(path)  # released

  leave(pid=os.getppid(), boot_id='a boot before the last restart')
  with pytest.raises(RuntimeError), workdir_lib.lock(workdir):
    raise RuntimeError('released on errors too')
  assert 'the machine has restarted since' in capsys.readouterr().out
  assert not os.path.exists(path)

  leave(pid=os.getppid())  # alive: refused, left in place
  with pytest.raises(UserError, match=f'in use by another run.*kill {os.getppid()}'):
    with workdir_lib.lock(workdir):
      pass
  leave(pid=1, host='elsewhere')  # can't tell: refused, saying how to remove it
  with pytest.raises(UserError, match=f'another host.*elsewhere.*remove {path}'):
    with workdir_lib.lock(workdir):
      pass
  assert _lock_of(workdir)['host'] == 'elsewhere'

  fresh = str(tmp_path / 'fresh')  # made for the run; removed again if nothing was written
  with workdir_lib.lock(fresh):
    assert os.path.isdir(fresh)
  assert not os.path.exists(fresh)


def _fill_the_disk_after(monkeypatch, step):
  """ENOSPC from orbax's array writer (in its background commit) for saves past `step`."""
  from orbax.checkpoint._src.serialization import serialization

  full = {'now': False}
  real_save, real_write = checkpoint.Checkpoints.save, serialization.async_serialize_from_host

  def save(self, state, *args, **kwargs):
    full['now'] = int(state.step) > step
    return real_save(self, state, *args, **kwargs)

  async def write(*args, **kwargs):
    if full['now']:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return await real_write(*args, **kwargs)

  monkeypatch.setattr(checkpoint.Checkpoints, 'save', save)
  monkeypatch.setattr(serialization, 'async_serialize_from_host', write)


def test_full_disk_is_one_error_line_and_the_same_command_resumes(
  data_dir, runs, reference, monkeypatch, capfd
):
  workdir = str(runs / 'full_disk')
  with monkeypatch.context() as m:
    _fill_the_disk_after(m, 6)
    result = run_main_in_process(*_flags(data_dir, workdir))
  out, err = capfd.readouterr()  # what orbax's threads wrote past the redirection
  assert_user_error(
    result,
    'saving the checkpoint of step 8 failed (No space left on device; it needs about',
    'are free); the checkpoints [2, 4, 6] in',
    'intact; free disk space and run the same command again',
  )
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert 'Traceback' not in out + err and 'rror' not in err, err

  # Known short before the save starts: said then, before orbax writes anything.
  with monkeypatch.context() as m:
    m.setattr(checkpoint.shutil, 'disk_usage', lambda path: shutil._ntuple_diskusage(9, 9, 9))
    result = run_main_in_process(*_flags(data_dir, workdir))
  assert_user_error(
    result, 'not enough disk space for the checkpoint of step 8', '9 bytes are free'
  )

  result = run_main_in_process(*_flags(data_dir, workdir))  # room again
  assert result.returncode == 0, result.stderr
  assert 'resumed from step 6' in result.stdout
  assert _final_test_row(workdir) == [r for r in reference if r['split'] == 'test'][-1]


def test_a_workdir_that_vanishes_stops_the_run(digits_config, tmp_path, monkeypatch, capfd):
  workdir = str(tmp_path / 'run')
  real_write = train.MetricWriter.write

  def write(self, step, split, metrics):
    real_write(self, step, split, metrics)
    if step == 6:
      os.rename(workdir, f'{workdir}.elsewhere')  # as a network mount that drops

  monkeypatch.setattr(train.MetricWriter, 'write', write)
  # The save of step 4 may still be in flight, else the one of step 8 finds no workdir.
  gone = f'checkpoint of step [48].*: {re.escape(workdir)} (is gone|was removed).*; bring it back'

  with pytest.raises(UserError, match=gone):
    train.train_and_evaluate(digits_config, workdir)
  assert 'Traceback' not in capfd.readouterr().err

  def full(self, step, split, metrics):  # the metrics, not a checkpoint, meet the full disk
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(train.MetricWriter, 'write', full)
  with pytest.raises(UserError, match='writing into the workdir failed: the disk of .* is full'):
    train.train_and_evaluate(digits_config, str(tmp_path / 'full'))
  assert 'Traceback' not in capfd.readouterr().err
  # A workdir turned read-only is told by the error of the write (root writes anyway).
  fault = workdir_lib.write_fault(str(tmp_path), OSError(errno.EROFS, 'Read-only file system'))
  assert f'{tmp_path} is read-only now' in str(fault)


def test_sigterm_inside_a_commit_waits_for_it_and_resumes(data_dir, runs, reference):
  workdir = str(runs / 'sigterm')
  ckpts = os.path.join(workdir, 'checkpoints')
  proc = _start(data_dir, workdir)

  def committing():  # a temporary directory of a step before the last few
    names = os.listdir(ckpts) if os.path.isdir(ckpts) else []
    return any('tmp' in n and int(n.split('.')[0]) < STEPS - 4 for n in names)

  assert _wait_until(proc, committing)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 3, stderr
  stopped_at = int(stderr.split('after step ')[1].split(';')[0])
  names = os.listdir(ckpts)
  assert max(int(n) for n in names if n.isdigit()) == stopped_at
  assert not [n for n in names if 'tmp' in n]  # nothing half-written
  result = run_main_in_process(*_flags(data_dir, workdir))
  assert result.returncode == 0, result.stderr
  assert f'resumed from step {stopped_at}' in result.stdout
  assert 'warning' not in result.stdout + result.stderr
  assert _final_test_row(workdir) == [r for r in reference if r['split'] == 'test'][-1]


def test_a_real_full_disk_on_a_small_tmpfs(data_dir, runs, reference, monkeypatch, capfd):
  """As root (where CI runs): orbax's own writes fail (the check before a save is off)."""
  workdir = runs / 'tmpfs'  # the mount itself: the compilation cache stays beside it
  workdir.mkdir()
  mount = ['mount', '-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', str(workdir)]
  if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
    pytest.skip('needs root, to mount a small tmpfs')
  try:
    with monkeypatch.context() as m:
      m.setattr(checkpoint.Checkpoints, '_no_room', lambda self, step, state: None)
      result = run_main_in_process(*_flags(data_dir, workdir))
    err = capfd.readouterr().err
    assert_user_error(result, '(No space left on device', 'intact', 'free disk space and run')
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'Traceback' not in err and 'rror' not in err, err
    subprocess.run(['mount', '-o', 'remount,size=16m', str(workdir)], check=True)
    result = run_main_in_process(*_flags(data_dir, workdir))  # room again
    assert result.returncode == 0, result.stderr
    assert _final_test_row(workdir) == [r for r in reference if r['split'] == 'test'][-1]
  finally:
    subprocess.run(['umount', '-l', str(workdir)])
