"""The workdir's record of its run: `config.json`, refusing to mix two runs, and
`run.lock`, which keeps a second run out while one writes there."""

import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import time

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from train_lib.errors import UserError

LOCK_FILE = 'run.lock'

# Fields that may change between a run and its continuation without making it another
# run: how long to train, how often to log, evaluate and save.
RESUMABLE_FIELDS = frozenset(
  {
    'num_epochs',
    'num_train_steps',
    'log_every_steps',
    'eval_every_steps',
    'checkpoint_every_steps',
    'eval_every_epochs',
    'checkpoint_every_epochs',
    'keep_checkpoints',
    'eval_batch_size',
    'dataset.data_dir',
    # Where the starting weights came from and what the other modes look at: a run
    # converted from a file continues without repeating --config.init_from.
    'init_from',
    'init_from_strict',
    'export_to',
  }
)
# Whole groups of fields that only the other modes read, or that change speed only.
RESUMABLE_PREFIXES = ('inspect.', 'predict.', 'system.')
# The resolved schedule, written beside the config; it follows from the fields above.
SCHEDULE_KEY = 'schedule'


def flatten(d, prefix='') -> dict:
  """{'a.b': value} of a nested dict."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def check_config(
  config: ml_collections.ConfigDict, workdir: str, allow_change: bool = False
) -> None:
  """Refuses a workdir that holds a run with another config.

  Args:
    config: the resolved config of this run.
    workdir: the run's directory.
    allow_change: accept differing fields.

  Raises:
    UserError: the workdir's config differs in fields outside RESUMABLE_FIELDS.
  """
  old = read_config(workdir)
  if old is not None:
    a, b = flatten(old), flatten(json.loads(config.to_json()))
    # Fields the old run did not have yet (added to configs/default.py since) are new
    # defaults, not a different run.
    changed = sorted(
      k
      for k in a
      if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS and not k.startswith(RESUMABLE_PREFIXES)
    )
    if changed and not allow_change:
      raise UserError(
        f'workdir {workdir} holds a run with a different config ({", ".join(changed)});'
        ' use another --workdir, or pass --allow_config_change to continue it anyway'
      )


def read_config(workdir: str) -> dict | None:
  """DIR/config.json without the resolved schedule, or None where there is none."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    old = json.load(f)
  old.pop(SCHEDULE_KEY, None)
  return old


def record_config(
  config: ml_collections.ConfigDict, workdir: str, schedule: dict | None = None
) -> None:
  """Writes the resolved config to DIR/config.json (atomically, process 0 only), with
  the resolved schedule (steps, epochs, batch, peak lr, ...) under 'schedule'."""
  path = os.path.join(workdir, 'config.json')
  new = json.loads(config.to_json())
  if schedule is not None:
    new[SCHEDULE_KEY] = schedule
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(new, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def write_json(path: str, record: dict) -> None:
  """Writes `record` to `path` atomically; where that fails (a read-only workdir), says so
  in a warning instead."""
  try:
    with open(path + '.tmp', 'w') as f:
      json.dump(record, f, indent=2)
    os.replace(path + '.tmp', path)
  except OSError as e:
    print(f'warning: could not write {path} ({short_reason(e)})', flush=True)


@contextlib.contextmanager
def lock(workdir: str):
  """Holds DIR/run.lock while the block runs: one writing run per workdir.

  Process 0 takes it for the whole job, before anything is written (making DIR if
  needed, and removing it again if it is left empty). A lock left by a run that is gone
  (killed, or the machine restarted) on this host is taken over with a note; the lock
  of a live run, or of a run on another host, is refused. Released when the block ends,
  however it ends (an error, a signal's `Preempted`).

  Raises:
    UserError: another run holds the workdir; the message names it and the fix.
  """
  held, refusal = None, None
  if jax.process_index() == 0:
    try:
      held = _Lock(workdir)
    except UserError as e:
      refusal = e
  if jax.process_count() > 1:  # the other processes stop with process 0
    taken = multihost_utils.broadcast_one_to_all(np.int32(refusal is None))
    if not taken and refusal is None:
      refusal = UserError(f'process 0 could not take the workdir {workdir}; see its error')
  if refusal is not None:
    raise refusal
  try:
    yield
  finally:
    if held is not None:
      held.release()


class _Lock:
  """DIR/run.lock, created atomically (O_EXCL) with {host, pid, started, boot_id}."""

  def __init__(self, workdir: str):
    directory = os.path.abspath(workdir)
    self.path = os.path.join(directory, LOCK_FILE)
    self._made = None if os.path.isdir(directory) else directory
    os.makedirs(directory, exist_ok=True)
    self.record = {
      'host': socket.gethostname(),
      'pid': os.getpid(),
      'started': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
      'boot_id': _boot_id(),
      'command': ' '.join(sys.argv),
    }
    for _ in range(50):
      try:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
      except FileExistsError:
        self._take_over_or_refuse()
        continue
      with os.fdopen(fd, 'w') as f:
        json.dump(self.record, f)
      return
    raise UserError(f'could not take {self.path}: other runs keep taking it; try again')

  def _take_over_or_refuse(self) -> None:
    holder = _read(self.path)
    if holder is None:  # gone meanwhile, or being written by a run starting just now
      if _age(self.path) < 5:
        time.sleep(0.1)
        return
      holder, gone = {}, 'its lock file is unreadable'
    else:
      gone = _gone(holder)
    who = (
      f'host {holder.get("host", "?")}, process {holder.get("pid", "?")}, '
      f'since {holder.get("started", "?")}'
    )
    where = os.path.dirname(self.path)
    if gone is None and holder.get('host') == socket.gethostname():
      raise UserError(
        f'workdir {where} is in use by another run ({who}); wait for it to end or stop it '
        f'(kill {holder.get("pid")}), or give another --workdir'
      )
    if gone is None:
      raise UserError(
        f'workdir {where} is in use by a run on another host ({who}); if that run is '
        f'gone, remove {self.path} and run again; otherwise give another --workdir'
      )
    print(f'note: taking over {self.path} of a run that is gone ({who}: {gone})', flush=True)
    # Moved aside atomically: of several runs taking over at once, one moves it.
    aside = f'{self.path}.stale-{os.getpid()}'
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return
    if _read(aside) != (holder or None):  # a fresh lock of a run just started: put it back
      with contextlib.suppress(FileExistsError):
        os.link(aside, self.path)
    os.unlink(aside)

  def release(self) -> None:
    """Removes the lock if it is still ours (the workdir may have vanished meanwhile)."""
    with contextlib.suppress(OSError):
      if _read(self.path) == self.record:
        os.unlink(self.path)
      if self._made:
        os.rmdir(self._made)  # only if nothing was written there


def _read(path: str) -> dict | None:
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def _age(path: str) -> float:
  try:
    return time.time() - os.path.getmtime(path)
  except OSError:
    return 0.0


def _boot_id() -> str | None:
  """This boot of this machine (Linux), to recognise a lock from before a restart."""
  try:
    with open('/proc/sys/kernel/random/boot_id') as f:
      return f.read().strip()
  except OSError:
    return None


def _gone(holder: dict) -> str | None:
  """Why the run of `holder` is gone, or None where it may be alive (or can't be told)."""
  if holder.get('host') != socket.gethostname():
    return None
  boot_id = _boot_id()
  if boot_id and holder.get('boot_id') and holder['boot_id'] != boot_id:
    return 'the machine has restarted since'
  pid = holder.get('pid')
  if not isinstance(pid, int) or pid <= 0:
    return 'its lock file names no process'
  return None if _alive(pid) else f'process {pid} is not running'


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # another user's process
  try:  # a killed process that its parent has not reaped yet is gone too
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except (OSError, IndexError):
    return True


def identity(directory: str) -> tuple[int, int] | None:
  """(device, inode) of `directory`, to tell it from one made anew at its path; None
  where there is none."""
  try:
    st = os.stat(directory)
  except OSError:
    return None
  return st.st_dev, st.st_ino


def storage_fault(
  directory: str, error: BaseException | None = None, was: tuple[int, int] | None = None
) -> tuple[str, str] | None:
  """(what is wrong, what to do) where the storage of `directory` failed under a run:
  it is gone (or was replaced: `was` is its identity() when the run began), read-only or
  full; None where it looks fine and `error` says nothing of it.
  """
  code = error_number(error)
  if was is not None and identity(directory) not in (was, None):
    return (
      f'{directory} was removed or replaced during the run (or its disk unmounted)',
      'bring it back and run the same command again to resume from its newest checkpoint',
    )
  if not os.path.isdir(directory):
    gone = directory  # the outermost directory that is gone: the workdir, as a rule
    while not os.path.isdir(os.path.dirname(gone)) and os.path.dirname(gone) != gone:
      gone = os.path.dirname(gone)
    return (
      f'{gone} is gone (removed, or its disk unmounted)',
      'bring it back and run the same command again to resume from its newest checkpoint',
    )
  if code == errno.EROFS or not os.access(directory, os.W_OK | os.X_OK):
    return (
      f'{directory} is read-only now',
      'make it writable again and run the same command again to resume',
    )
  if code in (errno.ENOSPC, errno.EDQUOT):
    return (
      f'the disk of {directory} is full ({size_text(shutil.disk_usage(directory).free)} free)',
      'free disk space and run the same command again to resume',
    )
  if code is not None:  # a stale network file handle, an I/O error
    return (
      f'the storage of {directory} failed',
      'check it (its mount) and run the same command again to resume',
    )
  return None


def write_fault(workdir: str, error: OSError) -> UserError | None:
  """One line for a write into `workdir` that failed under the run (its disk full, the
  workdir removed or turned read-only); None for an OSError about something else."""
  directory = os.path.abspath(workdir)
  name = error.filename if isinstance(error.filename, str) else ''
  if name and not os.path.abspath(name).startswith(directory):
    return None  # a file elsewhere (the data, say)
  fault = storage_fault(directory, error)
  if fault is None:
    return None
  what, fix = fault
  return UserError(f'writing into the workdir failed: {what} ({short_reason(error)}); {fix}')


def error_number(error: BaseException | None) -> int | None:
  """The errno of a storage failure in `error` or its causes (also where a library
  wrapped it in its own exception, naming it only in the message)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS:
      return error.errno
    for code in _STORAGE_ERRNOS:
      if os.strerror(code) in str(error):
        return code
    error = error.__cause__ or error.__context__
  return None


_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ESTALE, errno.EIO)


def short_reason(error: BaseException) -> str:
  """The errno text of a storage failure, else the first line of the message (short)."""
  code = error_number(error)
  if code is not None:
    return os.strerror(code)
  lines = str(error).strip().splitlines()
  first = lines[0] if lines else ''
  return f'{type(error).__name__}: {first[:160]}' if first else type(error).__name__


def size_text(n: float) -> str:
  for unit in ('bytes', 'KB', 'MB', 'GB'):
    if n < 1024 or unit == 'GB':
      return f'{n:.0f} {unit}' if unit == 'bytes' else f'{n:.1f} {unit}'
    n /= 1024
