"""main.py as a user runs it: the default job's path, kill and resume, error lines."""

from helpers import assert_user_error, run_main

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
  result = run_main(*_small(data_dir), '--config.model.name=lenet6', f'--workdir={tmp_path}/run')
  assert_user_error(result, "unknown model 'lenet6'", 'lenet5_modern')


def test_batch_size_the_devices_cannot_split(data_dir, tmp_path):
  result = run_main(*_small(data_dir), '--config.batch_size=60', f'--workdir={tmp_path}/run')
  assert_user_error(result, 'batch_size=60', '8 devices', '--config.batch_size=56')


def test_unknown_config_field_and_missing_file(tmp_path):
  assert_user_error(
    run_main(CONFIG, '--config.leraning_rate=0.1', f'--workdir={tmp_path}'), 'leraning_rate'
  )
  assert_user_error(
    run_main('--config=configs/nope.py', f'--workdir={tmp_path}'), 'configs/nope.py'
  )


def test_dataset_not_prepared(data_dir, tmp_path):
  result = run_main(
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
