"""Runs that survive: kill -9 and resume, SIGTERM, broken checkpoints, NaNs, bad input."""

import errno
import json
import os
import signal
import time

import jax
import numpy as np
import pytest
from helpers import (
  assert_user_error,
  read_metrics,
  run_main,
  run_main_in_process,
  start_main,
)

from input_pipeline.errors import DataError
from train_lib import checkpoint, steps, train
from train_lib.errors import UserError

STEPS = 24


def _flags(data_dir, workdir):
  return [
    '--config=configs/digits_lenet5.py',
    f'--config.dataset.data_dir={data_dir}',
    '--config.batch_size=64',
    f'--config.num_train_steps={STEPS}',
    '--config.log_every_steps=4',
    '--config.checkpoint_every_steps=2',
    '--config.eval_every_steps=12',
    f'--workdir={workdir}',
  ]


def _final_test_row(workdir):
  return [r for r in read_metrics(workdir) if r['split'] == 'test'][-1]


def _start(data_dir, workdir):
  return start_main(*_flags(data_dir, workdir))


def _wait_for(proc, ckpts, predicate, timeout=240):
  """Polls the checkpoint directory until `predicate(names)`; False if the run ended."""
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    names = os.listdir(ckpts) if os.path.isdir(ckpts) else []
    if predicate(names):
      return True
    time.sleep(0.01)
  return False


@pytest.fixture(scope='module')
def reference(data_dir, tmp_path_factory):
  """The final test row of an uninterrupted run."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  result = run_main(*_flags(data_dir, workdir))
  assert result.returncode == 0, result.stderr
  return _final_test_row(workdir)


def test_kill_9_at_several_moments_then_resume_is_exact(data_dir, tmp_path, reference):
  workdir = str(tmp_path / 'run')
  ckpts = os.path.join(workdir, 'checkpoints')
  # (After a first checkpoint: test_sigterm_checkpoints_and_resumes stops there too.)
  moments = [
    lambda names: any('tmp' in n for n in names),  # while a checkpoint is written
    lambda names: any(n.isdigit() and int(n) >= 14 for n in names),  # after an eval
  ]
  for moment in moments:
    proc = _start(data_dir, workdir)
    if _wait_for(proc, ckpts, moment):
      proc.send_signal(signal.SIGKILL)
    proc.communicate()
  result = run_main(*_flags(data_dir, workdir))
  assert result.returncode == 0, result.stderr
  assert 'resumed from step' in result.stdout
  assert 'taking over' in result.stdout  # the killed run's lock
  assert _final_test_row(workdir) == reference  # bit-exact loss and accuracy


def test_sigterm_checkpoints_and_resumes(data_dir, tmp_path, reference):
  workdir = str(tmp_path / 'run')
  proc = _start(data_dir, workdir)
  assert _wait_for(
    proc, os.path.join(workdir, 'checkpoints'), lambda names: any(n.isdigit() for n in names)
  )
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 3, stderr
  assert 'stopped by SIGTERM after step' in stderr and 'run the same command' in stderr
  stopped_at = int(stderr.split('after step ')[1].split(';')[0])
  saved = [int(n) for n in os.listdir(os.path.join(workdir, 'checkpoints')) if n.isdigit()]
  assert max(saved) == stopped_at < STEPS
  result = run_main(*_flags(data_dir, workdir))
  assert result.returncode == 0, result.stderr
  assert f'resumed from step {stopped_at}' in result.stdout
  assert _final_test_row(workdir) == reference


def _corrupt(step_dir):
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def test_truncated_newest_checkpoint_falls_back(digits_config, tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(digits_config, workdir)
  ckpts = os.path.join(workdir, 'checkpoints')
  assert sorted(int(n) for n in os.listdir(ckpts) if n.isdigit()) == [4, 8]
  _corrupt(os.path.join(ckpts, '8'))
  train.evaluate_checkpoint(digits_config, workdir)
  out = capsys.readouterr().out
  assert 'checkpoint 8' in out and 'eval of step 4' in out
  assert os.path.exists(os.path.join(workdir, 'eval_4.json'))


def test_keeps_latest_and_best(digits_config, tmp_path):
  config = digits_config
  config.num_train_steps = 12
  config.checkpoint_every_steps = 2
  config.eval_every_steps = 3
  config.keep_checkpoints = 2
  config.keep_best_checkpoints = 1
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  evals = {r['step']: r['accuracy'] for r in read_metrics(workdir) if r['split'] == 'test'}
  best = max(evals, key=lambda s: (evals[s], s))
  kept = sorted(int(n) for n in os.listdir(os.path.join(workdir, 'checkpoints')) if n.isdigit())
  assert kept == sorted({10, 12, best})
  metrics = train.evaluate_checkpoint(config, workdir, which='best')
  with open(os.path.join(workdir, f'eval_{best}.json')) as f:
    assert json.load(f)['step'] == best
  assert metrics['accuracy'] == evals[best]


def test_nan_stops_without_checkpointing_it(digits_config, tmp_path, monkeypatch):
  real_step = steps.train_step

  def poisoned(state, batch, **kw):
    new_state, metrics = real_step(state, batch, **kw)
    poison = jax.numpy.where(state.step == 5, jax.numpy.nan, 0.0)  # the 6th step
    return new_state, dict(metrics, loss=metrics['loss'] + poison)

  monkeypatch.setattr(steps, 'train_step', poisoned)
  workdir = str(tmp_path / 'run')
  with pytest.raises(UserError, match='NaN or infinite at step 6.*checkpoint is step 4'):
    train.train_and_evaluate(digits_config, workdir)
  kept = [int(n) for n in os.listdir(os.path.join(workdir, 'checkpoints')) if n.isdigit()]
  assert kept == [4]


def test_full_disk_fails_the_save_and_keeps_the_earlier(digits_config, tmp_path, monkeypatch):
  real_save = checkpoint.ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step > 4:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(checkpoint.ocp.CheckpointManager, 'save', save)
  workdir = str(tmp_path / 'run')
  with pytest.raises(UserError, match='No space left on device.*intact'):
    train.train_and_evaluate(digits_config, workdir)
  monkeypatch.undo()
  restored = checkpoint.Checkpoints(workdir, 3)
  assert restored.latest_step() == 4


@pytest.mark.parametrize(
  'field,value,message',
  [
    ('learning_rate', -0.1, 'learning_rate=-0.1 must be >= 0'),
    ('batch_size', 0, 'batch_size=0 must be positive'),
    ('batch_size', 60, 'batch_size=60 must be a positive multiple of the 8 devices'),
    ('eval_batch_size', 12, 'eval_batch_size=12 must be a positive multiple'),
    ('lr_schedule', 'linear', "lr_schedule='linear' is not one of constant, cosine, step"),
  ],
)
def test_bad_values(digits_config, tmp_path, field, value, message):
  setattr(digits_config, field, value)
  with pytest.raises(UserError, match=message):
    train.train_and_evaluate(digits_config, str(tmp_path / 'run'))


def test_unknown_dataset_lists_valid_ones(digits_config, tmp_path):
  digits_config.dataset.name = 'digitz'
  with pytest.raises(DataError, match="unknown dataset 'digitz'.*digits"):
    train.train_and_evaluate(digits_config, str(tmp_path / 'run'))


def test_workdir_with_another_config_is_refused_and_left_intact(digits_config, data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  digits_config.num_train_steps = 4
  train.train_and_evaluate(digits_config, workdir)
  before = {p: os.path.getmtime(os.path.join(workdir, p)) for p in os.listdir(workdir)}
  with open(os.path.join(workdir, 'config.json')) as f:
    recorded = json.load(f)
  flags = _flags(data_dir, workdir)
  flags[3] = '--config.num_train_steps=4'
  result = run_main_in_process(*flags, '--config.learning_rate=0.5')
  assert_user_error(result, 'different config', 'learning_rate', '--allow_config_change')
  assert {p: os.path.getmtime(os.path.join(workdir, p)) for p in os.listdir(workdir)} == before
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f) == recorded
  # Training longer is the same run; an explicit flag allows a change.
  digits_config.num_train_steps = 6
  train.train_and_evaluate(digits_config, workdir)
  digits_config.learning_rate = 0.5
  with pytest.raises(UserError, match='different config'):
    train.train_and_evaluate(digits_config, workdir)
  train.train_and_evaluate(digits_config, workdir, allow_config_change=True)
  assert np.isfinite(_final_test_row(workdir)['loss'])
