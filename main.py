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

from train_lib.errors import UserError

FLAGS = flags.FLAGS
EXIT_PREEMPTED = 3  # stopped by SIGTERM/SIGINT after checkpointing; rerun to resume
MODES = ('train', 'eval', 'summary', 'bench')

config_flags.DEFINE_config_file('config', None, 'Experiment config file[:arg].',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and logs.')
flags.DEFINE_enum('mode', 'train', MODES, 'What to do.')
flags.DEFINE_string('checkpoint', 'latest',
                    "--mode=eval: which checkpoint, 'latest', 'best' or a step number.")
flags.DEFINE_bool('allow_config_change', False,
                  'Continue a run in --workdir even if its config differs.')


def run(argv) -> None:
  """Dispatches to the library function of --mode."""
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {argv[1:]}; flags look like --name=value')
  if not FLAGS['verbosity'].present:  # orbax and TFDS log every step at INFO
    logging.set_verbosity(logging.WARNING)
  config = _load_config()
  if config is None:
    raise UserError('--config is required, e.g. --config=configs/digits_lenet5.py')
  from train_lib import compilation  # pylint: disable=g-import-not-at-top
  compilation.configure(config, FLAGS.workdir)  # before anything compiles
  if FLAGS.mode == 'summary':
    from train_lib import summary_mode  # pylint: disable=g-import-not-at-top
    summary_mode.print_model_summary(config)
    return
  if FLAGS.mode == 'bench':  # synthetic data: no dataset, --workdir only for the cache
    from train_lib import bench  # pylint: disable=g-import-not-at-top
    bench.run(config)
    return
  if not FLAGS.workdir:
    raise UserError('--workdir is required, e.g. --workdir=/tmp/run1')
  from train_lib import train  # pylint: disable=g-import-not-at-top
  if FLAGS.mode == 'train':
    try:
      train.train_and_evaluate(config, FLAGS.workdir, FLAGS.allow_config_change)
    except train.Preempted as e:
      print(str(e), file=sys.stderr, flush=True)
      sys.exit(EXIT_PREEMPTED)
  elif FLAGS.mode == 'eval':
    train.evaluate_checkpoint(config, FLAGS.workdir, FLAGS.checkpoint)


def _load_config():
  """FLAGS.config, whose file is loaded lazily, with its errors as UserErrors."""
  try:
    config = FLAGS.config
    if config is not None:
      config.keys()  # A config file that failed to load raises on first access.
    return config
  except OSError as e:
    detail = str(e).strip().splitlines()[-1].strip()
    raise UserError(f'cannot load --config: {detail}; give an existing file such as '
                    'configs/digits_lenet5.py') from None
  except (KeyError, AttributeError) as e:
    raise UserError(f'unknown config field {e}; check the --config.FIELD=VALUE '
                    'overrides against the config file') from None
  except (ValueError, TypeError) as e:
    raise UserError(f'bad --config: {e}') from None


def main(argv) -> None:
  try:
    run(argv)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)


def _parse_flags(argv):
  """absl flag parsing, with config errors reported as one `error:` line."""
  try:
    return FLAGS(argv)
  except (KeyError, AttributeError) as e:
    print(f'error: unknown config field {str(e).strip(chr(34))} in the --config.FIELD '
          'overrides; check the name against the config file', file=sys.stderr, flush=True)
    sys.exit(2)
  except (flags.Error, ValueError, TypeError) as e:
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    message = ' '.join(lines[:1] + lines[-1:]) if lines else type(e).__name__
    print(f'error: {message}', file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == '__main__':
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  app.run(main, flags_parser=_parse_flags)
