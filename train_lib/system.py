"""Per-platform speed settings, chosen in one place: `config.system`.

- `system.xla_options`: XLA compiler options of the train and eval steps. 'auto' takes
  the measured set for the platform below, 'default' XLA's own defaults, and
  'name=value,name=value' exactly the options given (XLA debug option names without
  the leading '--', e.g. 'xla_cpu_enable_fast_math=true').
- `system.backward`: the layers' backward passes (models/backward.py): 'auto' (below),
  'xla' (JAX's own) or 'cpu' (written for XLA:CPU).

What 'auto' picks, and why (README, Performance, has the figures):
- CPU: `xla_cpu_experimental_ynn_fusion_type=''`. jaxlib 0.10 hands convolutions to
  YNNPACK by default; its kernel gradient of a 3x3 convolution at 32x32x16 took ~180 ms
  where XLA's Eigen path takes ~15 ms (batch 128, the 2-core CPU here), which made a
  CIFAR ResNet-20 training step ~1.8x slower. And `backward='cpu'`: XLA:CPU otherwise
  recomputes BatchNorm and ReLU inside the transposes feeding each kernel gradient
  (models/conv.py) and pools through a select-and-scatter ~40x slower than a tap stack.
- GPU and TPU: XLA's defaults and its own backward passes (not measured here yet).

XLA's option names come and go between jaxlib releases (0.12 dropped
`xla_cpu_use_fusion_emitters`), so each option is checked once against the running jaxlib by
compiling a trivial program with it (a few ms): an 'auto' option it refuses is left out with
one printed note; a refused option of the user's is a UserError naming it, raised when the
steps are built, before training starts.
"""

import functools

import jax
import jaxlib
import ml_collections
import numpy as np

from models import backward
from train_lib.errors import UserError

AUTO_XLA_OPTIONS = {
  'cpu': {'xla_cpu_experimental_ynn_fusion_type': ''},
}
AUTO_BACKWARD = {'cpu': 'cpu'}


def _parse_value(text: str):
  lowered = text.strip().lower()
  if lowered in ('true', 'false'):
    return lowered == 'true'
  try:
    return int(lowered)
  except ValueError:
    pass
  try:
    return float(lowered)
  except ValueError:
    return text.strip()


@functools.cache
def option_refusal(platform: str, name: str, value) -> str | None:
  """Why the running jaxlib refuses the XLA option `name=value` on `platform`, or None.

  Compiles `x + 1` once per option with only that option (cached: once per process).
  """
  x = jax.device_put(np.float32(0), jax.local_devices(backend=platform)[0])
  try:
    jax.jit(lambda v: v + 1).lower(x).compile(compiler_options={name: value})
  except jax.errors.JaxRuntimeError as e:
    message = str(e).strip()
    return message.splitlines()[0] if message else type(e).__name__
  return None


def supported_xla_options(options: dict, platform: str) -> dict:
  """The options of `options` that the running jaxlib accepts on `platform`."""
  return {k: v for k, v in options.items() if option_refusal(platform, k, v) is None}


@functools.cache
def _auto_xla_options(platform: str) -> tuple:
  """AUTO_XLA_OPTIONS[platform] less those this jaxlib refuses, noted once per process."""
  candidates = AUTO_XLA_OPTIONS.get(platform, {})
  kept = supported_xla_options(candidates, platform)
  left_out = [k for k in candidates if k not in kept]
  if left_out and jax.process_index() == 0:
    them = 'it' if len(left_out) == 1 else 'them'
    print(
      f"note: system.xla_options='auto' leaves out {', '.join(left_out)}: jaxlib "
      f'{jaxlib.__version__} does not accept {them} on {platform}',
      flush=True,
    )
  return tuple(kept.items())


def xla_options(config: ml_collections.ConfigDict, platform: str) -> dict:
  """The compiler options of the steps on `platform` ('cpu', 'gpu', 'tpu').

  Raises:
    UserError: `config.system.xla_options` is not 'auto', 'default' or name=value pairs,
      or the running jaxlib refuses one of the options given.
  """
  chosen = config.system.xla_options.strip()
  if chosen == 'auto':
    return dict(_auto_xla_options(platform))
  if chosen in ('default', ''):
    return {}
  options = {}
  for item in chosen.split(','):
    name, sep, value = item.partition('=')
    if not sep or not name.strip():
      raise UserError(
        f"system.xla_options: '{item}' is not name=value; give 'auto', "
        "'default' or e.g. 'xla_cpu_enable_fast_math=true,...'"
      )
    options[name.strip().lstrip('-')] = _parse_value(value)
  for name, value in options.items():
    refusal = option_refusal(platform, name, value)
    if refusal is not None:
      raise UserError(
        f"system.xla_options: jaxlib {jaxlib.__version__} refuses '{name}' on {platform} "
        f"({refusal}); drop it from --config.system.xla_options or give 'auto' or 'default'"
      )
  return options


def backward_mode(config: ml_collections.ConfigDict, platform: str) -> str:
  """The layers' backward passes on `platform` (one of models.backward.MODES)."""
  chosen = config.system.backward
  if chosen == 'auto':
    return AUTO_BACKWARD.get(platform, 'xla')
  if chosen not in backward.MODES:
    raise UserError(f"system.backward '{chosen}' is not one of auto, {', '.join(backward.MODES)}")
  return chosen


def mesh_platform(mesh) -> str:
  """The platform of a mesh's devices: 'cpu', 'gpu' (CUDA or ROCm) or 'tpu'."""
  platform = mesh.devices.flat[0].platform
  return 'gpu' if platform in ('cuda', 'rocm') else platform


@functools.cache
def cpu_has_bf16_units() -> bool | None:
  """Whether this CPU computes bfloat16 natively (x86 AVX512_BF16 or AMX-BF16, Arm BF16).

  From /proc/cpuinfo's flags; None where there is no /proc/cpuinfo (not Linux).
  """
  try:
    with open('/proc/cpuinfo') as f:
      flags = set(f.read().split())
  except OSError:
    return None
  return bool(flags & {'avx512_bf16', 'amx_bf16', 'bf16'})


def notes(config: ml_collections.ConfigDict, platform: str) -> list[str]:
  """Lines worth printing before a run: bfloat16 asked for on a CPU without bf16 units."""
  half = config.half_precision and config.half_precision_dtype == 'bfloat16'
  if platform == 'cpu' and half and cpu_has_bf16_units() is False:
    return [
      'note: this CPU has no bfloat16 units (no avx512_bf16, amx_bf16 or bf16 in '
      '/proc/cpuinfo), so bfloat16 computes through float32 conversions and is '
      'no faster than float32 here (README, Performance)'
    ]
  return []
