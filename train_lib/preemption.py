"""Stopping cleanly on SIGTERM and SIGINT: finish the step, checkpoint, exit."""

import signal

import jax
import numpy as np
from jax.experimental import multihost_utils


class StopRequest:
  """While active, SIGTERM and SIGINT set a flag instead of killing the process.

  A second signal of the same kind restores the default behaviour, so a user can still
  interrupt a run that hangs.
  """

  def __init__(self):
    self.signal_name = None
    self._signum = 0  # of the signal this process received
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    self._signum = signum
    signal.signal(signum, self._previous[signum])

  def agreed(self, sync: bool) -> bool:
    """Whether to stop now. With several processes they agree, at `sync` steps only.

    Every process must call this with the same `sync` at the same steps, so all stop
    after the same step and write the same checkpoint.
    """
    if jax.process_count() == 1:
      return self.signal_name is not None
    if not sync:
      return False
    signals = multihost_utils.process_allgather(np.int32(self._signum))
    if not self._signum and np.any(signals):  # say which process was signalled
      process = int(np.flatnonzero(signals)[0])
      self.signal_name = f'{signal.Signals(int(signals[process])).name} on process {process}'
    return bool(np.any(signals))
