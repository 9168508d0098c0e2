"""Entry point: parses flags and dispatches on --mode.

  python main.py --config=configs/digits_lenet5.py --workdir=/tmp/digits [--mode=train]

A user error (bad flag, config, data or workdir) prints one line `error: ...` to stderr
and exits with status 2; nothing in the workdir is removed. A run stopped by SIGTERM or
SIGINT checkpoints first, says how to resume, and exits with status 3.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from train_lib.errors import USER_ERRORS, UserError

FLAGS = flags.FLAGS
EXIT_PREEMPTED = 3  # stopped by SIGTERM/SIGINT after checkpointing; rerun to resume
MODES = ('train', 'eval', 'summary', 'bench', 'inspect', 'convert', 'predict', 'table', 'report')

config_flags.DEFINE_config_file('config', None, 'Experiment config file[:arg].', lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and logs.')
flags.DEFINE_enum('mode', 'train', MODES, 'What to do.')
flags.DEFINE_string(
  'checkpoint',
  'latest',
  "--mode=eval, predict, convert (export): which checkpoint, 'latest', 'best' or a step number.",
)
flags.DEFINE_bool(
  'allow_config_change', False, 'Continue a run in --workdir even if its config differs.'
)
# Multi-process runs (README, Multi-host); JAX detects SLURM, Open MPI, TPU pods and
# Kubernetes itself. Defaults: the JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
# JAX_PROCESS_ID environment variables.
flags.DEFINE_string('coordinator_address', None, "Multi-process: process 0's host:port.")
flags.DEFINE_integer('num_processes', None, 'Multi-process: number of processes.')
flags.DEFINE_integer('process_id', None, 'Multi-process: index of this process.')


def run(argv) -> None:
  """Checks the command line and the config, then calls the library function of --mode."""
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {argv[1:]}; flags look like --name=value')
  if not FLAGS['verbosity'].present:  # orbax and TFDS log every step at INFO
    logging.set_verbosity(logging.WARNING)
  config = _load_config()
  if config is None:
    raise UserError('--config is required, e.g. --config=configs/digits_lenet5.py')
  from train_lib import validation

  is_table = FLAGS.mode in ('table', 'report') or 'rows' in config  # configs/tables/*.py
  if not is_table:
    validation.check_config(config, FLAGS.mode)
    validation.check_checkpoint_flag(FLAGS.checkpoint)
  if FLAGS.mode in ('eval', 'convert', 'inspect', 'table', 'report') or (
    FLAGS.mode == 'train' and not is_table
  ):
    if not FLAGS.workdir:
      raise UserError('--workdir is required, e.g. --workdir=/tmp/run1')
  validation.check_workdir(FLAGS.workdir, 'table' if is_table else FLAGS.mode)

  from train_lib import compilation, distributed

  distributed.initialize(
    FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
  )  # before any JAX backend starts
  if is_table:
    _run_table(config)
    return
  compilation.configure(config, FLAGS.workdir)  # before anything compiles
  if FLAGS.mode == 'summary':
    from train_lib.modes import summary

    summary.print_model_summary(config)
  elif FLAGS.mode == 'bench':  # synthetic data: no dataset, --workdir only for the cache
    from train_lib.modes import bench

    bench.run(config)
  elif FLAGS.mode == 'predict':  # DIR's checkpoint, or --config.init_from without one
    from train_lib.modes import predict

    predict.run(config, FLAGS.workdir, FLAGS.checkpoint)
  elif FLAGS.mode == 'convert':  # PyTorch weights -> DIR (init_from), DIR -> export_to
    from train_lib import workdir
    from train_lib.modes import convert

    with workdir.lock(FLAGS.workdir):  # one writing run per workdir
      convert.run(config, FLAGS.workdir, FLAGS.checkpoint, FLAGS.allow_config_change)
  elif FLAGS.mode == 'inspect':  # pictures of DIR's newest checkpoint
    from train_lib.modes import inspect

    inspect.run(config, FLAGS.workdir)
  elif FLAGS.mode == 'eval':
    from train_lib import train

    train.evaluate_checkpoint(config, FLAGS.workdir, FLAGS.checkpoint)
  else:
    _train(config)


def _train(config) -> None:
  """--mode=train: fine-tuning imports `init_from` into a new DIR first."""
  from train_lib import train

  if config.init_from:
    from train_lib import workdir
    from train_lib.modes import convert

    with workdir.lock(FLAGS.workdir):  # train_and_evaluate takes it again after
      convert.import_weights(config, FLAGS.workdir, FLAGS.allow_config_change, only_if_new=True)
  try:
    train.train_and_evaluate(config, FLAGS.workdir, FLAGS.allow_config_change)
  except train.Preempted as e:
    print(str(e), file=sys.stderr, flush=True)
    sys.exit(EXIT_PREEMPTED)


def _run_table(config) -> None:
  """--mode=table|report on a table config; a stopped run exits as in --mode=train."""
  from train_lib.tables import runner

  config_file = config_flags.get_config_filename(FLAGS['config'])
  if FLAGS.mode != 'table':
    runner.main(FLAGS.mode, config, FLAGS.workdir, config_file)
    return
  from train_lib import train, workdir

  try:
    with workdir.lock(FLAGS.workdir):  # one table command per table directory
      runner.main(FLAGS.mode, config, FLAGS.workdir, config_file, FLAGS.allow_config_change)
  except train.Preempted as e:
    print(str(e), file=sys.stderr, flush=True)
    sys.exit(EXIT_PREEMPTED)


def _load_config():
  """FLAGS.config, whose file is loaded lazily, with its errors as UserErrors."""
  try:
    config = FLAGS.config
    if config is not None:
      config.keys()  # A config file that failed to load raises on first access.
    return config
  except OSError as e:
    detail = str(e).strip().splitlines()[-1].strip()
    raise UserError(
      f'cannot load --config: {detail}; give an existing file such as configs/digits_lenet5.py'
    ) from None
  except (KeyError, AttributeError) as e:
    raise UserError(
      f'unknown config field {e}; check the --config.FIELD=VALUE overrides against the config file'
    ) from None
  except (ValueError, TypeError) as e:
    raise UserError(f'bad --config: {e}') from None


def main(argv) -> None:
  try:
    run(argv)
  except USER_ERRORS as e:
    _exit_with(str(e))


def _parse_flags(argv):
  """absl flag parsing, with config errors reported as one `error:` line."""
  try:
    return FLAGS(argv)
  except (KeyError, AttributeError) as e:
    if 'get_config' in str(e):
      config = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), '')
      _exit_with(
        f'--config={config} has no get_config(); give an experiment config file '
        'such as configs/digits_lenet5.py'
      )
    _exit_with(
      f'unknown config field {str(e).strip(chr(34))} in the --config.FIELD overrides; '
      'check the name against the config file'
    )
  except (flags.Error, ValueError, TypeError) as e:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    _exit_with(' '.join(lines[:1] + lines[-1:]) if lines else type(e).__name__)


def _exit_with(message: str) -> None:
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(2)


if __name__ == '__main__':
  # TensorFlow (the input pipeline's reader) logs at import: its INFO lines, and, from
  # 2.21 on, a oneDNN notice that only turning its oneDNN kernels off silences. TF
  # decodes and crops here; the model's arithmetic is JAX's.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
  app.run(main, flags_parser=_parse_flags)
