"""main.py as a user runs it: the default job's path, kill and resume, error lines."""

import os

import pytest
from helpers import assert_user_error, run_main, run_main_in_process

CONFIG = '--config=configs/digits_lenet5.py'


def _small(data_dir, steps=24):
  return [
    CONFIG,
    f'--config.dataset.data_dir={data_dir}',
    '--config.batch_size=64',
    f'--config.num_train_steps={steps}',
    '--config.log_every_steps=4',
    '--config.checkpoint_every_steps=4',
    '--config.eval_every_steps=12',
  ]


def test_unknown_model_name(data_dir, tmp_path):
  result = run_main_in_process(
    *_small(data_dir), '--config.model.name=lenet6', f'--workdir={tmp_path}/run'
  )
  assert_user_error(result, "unknown model 'lenet6'", 'lenet5_modern')


def test_batch_size_the_devices_cannot_split(data_dir, tmp_path):
  result = run_main_in_process(
    *_small(data_dir), '--config.batch_size=60', f'--workdir={tmp_path}/run'
  )
  assert_user_error(result, 'batch_size=60', '8 devices', '--config.batch_size=56')


def test_unknown_config_field_and_missing_file(tmp_path):
  assert_user_error(
    run_main_in_process(CONFIG, '--config.leraning_rate=0.1', f'--workdir={tmp_path}'),
    'leraning_rate',
  )
  assert_user_error(
    run_main_in_process('--config=configs/nope.py', f'--workdir={tmp_path}'), 'configs/nope.py'
  )


def test_dataset_not_prepared(data_dir, tmp_path):
  result = run_main_in_process(
    CONFIG,
    f'--config.dataset.data_dir={data_dir}',
    '--config.dataset.name=mnist',
    f'--workdir={tmp_path}/run',
  )
  assert_user_error(result, "'mnist' is not prepared")


def test_summary_mode_last_line():
  result = run_main(CONFIG, '--mode=summary', '--config.model.name=lenet5_modern')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().splitlines()[-1] == 'total_params=61706 total_macs=416520'


@pytest.mark.parametrize(
  'flags, fragments',
  [
    (('--config=configs/cifar10_resnet.py:abc',), ("bad config string 'abc'", 'VARIANT')),
    ((CONFIG, '--config.num_epochs=-3'), ('num_epochs=-3', 'must be positive')),
    ((CONFIG, '--config.input.image_size=-3'), ('input.image_size=-3', '>= 0')),
    ((CONFIG, '--config.batch_size=0'), ('batch_size=0', 'must be positive')),
    ((CONFIG, '--config.eval_every_steps=0'), ('eval_every_steps=0', '-1')),
    ((CONFIG, '--config.optimizer=adam'), ("optimizer='adam'", 'sgd, adamw')),
    ((CONFIG, '--config.task=keypoint'), ("task='keypoint'", 'classification')),
  ],
)
def test_bad_config_is_one_error_line_and_the_workdir_untouched(tmp_path, flags, fragments):
  workdir = tmp_path / 'run'
  result = run_main_in_process(*flags, f'--workdir={workdir}')
  assert_user_error(result, *fragments)
  assert result.returncode == 2
  assert not workdir.exists()


def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / 'afile'
  path.write_text('keep me')
  result = run_main_in_process(CONFIG, f'--workdir={path}')
  assert_user_error(result, f'--workdir={path} is a file')
  assert result.returncode == 2 and path.read_text() == 'keep me'


def test_config_file_without_get_config(tmp_path):
  path = tmp_path / 'not_a_config.py'
  path.write_text('x = 1\n')
  result = run_main_in_process(f'--config={path}', f'--workdir={tmp_path}/run')
  assert_user_error(result, 'has no get_config()', 'configs/digits_lenet5.py')
  assert result.returncode == 2 and not os.path.exists(tmp_path / 'run')


def test_bad_checkpoint_flag(tmp_path):
  result = run_main_in_process(
    CONFIG, '--mode=eval', '--checkpoint=newest', f'--workdir={tmp_path}'
  )
  assert_user_error(result, "--checkpoint=newest is not 'latest', 'best' or a step number")
