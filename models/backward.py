"""Which backward passes the layers use: XLA's own, or ones written for XLA:CPU.

Layers with a choice (`models.conv.Conv`, `models.pooling.max_pool`) read it while the
train step is traced; whoever traces the step picks it per platform (the training
library, from `config.system.backward`), never a model. Every trace outside `use(...)`
gets 'xla'.

- 'xla': JAX's own differentiation, what GPUs and TPUs want.
- 'cpu': the same gradients computed in ways XLA:CPU runs fast (README, Performance):
  a convolution copies its saved input and incoming gradient before the kernel
  gradient reads them (models/conv.py); max pooling differentiates a stack of window
  taps instead of XLA's select-and-scatter (models/pooling.py).
"""

import contextlib
import contextvars

MODES = ('xla', 'cpu')
_MODE = contextvars.ContextVar('backward', default='xla')


@contextlib.contextmanager
def use(mode: str):
  """Layers traced inside use backward passes `mode` (one of MODES)."""
  if mode not in MODES:
    raise ValueError(f"backward '{mode}' is not one of {MODES}")
  token = _MODE.set(mode)
  try:
    yield
  finally:
    _MODE.reset(token)


def current() -> str:
  """The mode of the trace in progress."""
  return _MODE.get()
