"""`--mode=bench`: the speed of the real train step, on synthetic data already on device.

The step is the one training runs (`steps.compile_steps`, or `compile_multi_train_step`
when `steps_per_call` > 1) over the same mesh, with the config's model, optimizer,
precision and augmentation. The batch is random uint8 images of the model's input size
and random labels, made on the devices, so neither the dataset nor the host input
pipeline is measured. Compilation is timed on its own (tracing, lowering and XLA);
`bench_warmup_steps` then run untimed and `bench_steps` timed, waiting for the last.

Model FLOP utilization (MFU) is XLA's flop count of one compiled train step
(`cost_analysis()['flops']` per device, about 2 per multiply-accumulate plus the
elementwise work) divided by the step time and by the device's peak from `PEAK_FLOPS`.
Devices not in the table (every CPU: its peak depends on cores, clock and vector units)
get the achieved FLOP/s and 'unknown peak'.
"""

import dataclasses
import functools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from input_pipeline import preprocess
from train_lib import setup, sharding, steps, system
from train_lib.errors import UserError

# Dense peak FLOP/s per chip from the vendors' data sheets: (substring of
# `device.device_kind`, half precision (bf16/fp16), float32 as XLA runs it by default).
# XLA's default precision runs float32 convolutions and matmuls on TF32 tensor cores on
# NVIDIA Ampere and newer, and as bfloat16 passes on TPUs, so those are the float32
# peaks. The first matching row wins: specific names come first.
PEAK_FLOPS = (
  ('H100 PCIe', 756e12, 378e12),
  ('H100 NVL', 835e12, 418e12),
  ('H100', 989e12, 495e12),  # SXM (the 'NVIDIA H100 80GB HBM3' of cloud machines)
  ('H200', 989e12, 495e12),  # also GH200
  ('A100', 312e12, 156e12),
  ('L40S', 362e12, 183e12),
  ('L40', 181e12, 90e12),
  ('L4', 121e12, 60e12),
  ('V100', 125e12, 15.7e12),  # float16 (no bfloat16 or TF32 units)
  ('TPU v6 lite', 918e12, 918e12),
  ('TPU v5 lite', 197e12, 197e12),
  ('TPU v5', 459e12, 459e12),  # v5p
  ('TPU v4', 275e12, 275e12),
)


class CompileCounter:
  """Counts XLA compilations and persistent-cache loads while active (`with`)."""

  def __init__(self):
    self.compiles = 0  # programs compiled by XLA
    self.cache_hits = 0  # programs loaded from the persistent compilation cache

  def _on_duration(self, name: str, _secs: float, **_) -> None:
    if name == '/jax/core/compile/backend_compile_duration':
      self.compiles += 1

  def _on_event(self, name: str, **_) -> None:
    if name == '/jax/compilation_cache/cache_hits':
      self.cache_hits += 1

  def __enter__(self):
    jax.monitoring.register_event_duration_secs_listener(self._on_duration)
    jax.monitoring.register_event_listener(self._on_event)
    return self

  def __exit__(self, *exc_info):
    jax.monitoring.unregister_event_duration_listener(self._on_duration)
    jax.monitoring.unregister_event_listener(self._on_event)


@dataclasses.dataclass(frozen=True)
class BenchResult:
  """What one benchmark measured."""

  step_seconds: float  # per train step, mean over the timed steps
  timed_steps: int  # bench_steps, rounded up to whole calls
  warmup_steps: int
  images_per_sec: float  # global batch / step_seconds
  compile_seconds: float  # tracing + lowering + XLA compilation of the train step
  flops_per_step: float  # XLA's count for one step, per device
  peak_flops: float | None  # per device, None if the device is not in PEAK_FLOPS
  recompilations: int  # XLA compilations during the warm-up and timed steps
  from_cache: bool  # the executable came from the persistent compilation cache

  @property
  def mfu(self) -> float | None:
    if not self.peak_flops:
      return None
    return self.flops_per_step / self.step_seconds / self.peak_flops


def peak_flops(device_kind: str, half_precision: bool) -> float | None:
  """The device's dense peak FLOP/s from PEAK_FLOPS, or None if it is not listed."""
  for name, half, single in PEAK_FLOPS:
    if name.lower() in device_kind.lower():
      return half if half_precision else single
  return None


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  return float(cost.get('flops', 0.0)) if cost else 0.0


def _synthetic_batch(config, mesh, shape, leading=()):
  """Random uint8 images and int32 labels, made directly on the devices."""
  batch_size = config.batch_size
  spec = (None,) * len(leading) + (sharding.DATA_AXIS,)
  out = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))

  @functools.partial(jax.jit, out_shardings=out)
  def make(key):
    k_image, k_label = jax.random.split(key)
    image = jax.random.randint(k_image, (*leading, batch_size, *shape), 0, 256, jnp.int32)
    label = jax.random.randint(
      k_label, (*leading, batch_size), 0, config.dataset.num_classes, jnp.int32
    )
    return {'image': image.astype(jnp.uint8), 'label': label}

  return make(jax.random.PRNGKey(config.seed))


@dataclasses.dataclass
class Prepared:
  """A compiled train step with its first state and synthetic batch, ready to time."""

  train_step: Any  # the jitted step; reuses the compilation below, donates the state
  state: Any  # steps.TrainState; consumed by the first call
  batch: Any  # on the devices; stacked (steps_per_call, batch, ...) if > 1 per call
  steps_per_call: int
  compile_seconds: float  # tracing + lowering + XLA compilation
  flops_per_step: float  # XLA's count, per device
  from_cache: bool  # loaded from the persistent compilation cache


def prepare(config: ml_collections.ConfigDict, devices=None) -> Prepared:
  """Builds the config's model, optimizer and state and compiles its train step.

  Args:
    config: the experiment config (its `steps_per_call` picks the step).
    devices: the devices of the mesh (default: all).

  Returns:
    What `time_calls` needs, and the compilation's time and flops.
  """
  if not (config.input.pad_to or config.input.image_size):
    raise UserError('--mode=bench needs the input size: set --config.input.image_size')
  per_call = config.steps_per_call
  # The schedule's values don't change the program: one "epoch" of the bench's length.
  length = config.bench_warmup_steps + config.bench_steps + per_call
  s = setup.create(config, devices=devices, steps_per_epoch=length)
  sharding.check_batch_size(config.batch_size, s.mesh, 'batch_size')
  state = s.state
  if per_call == 1:
    train_step, _ = steps.compile_steps(s)
    batch = _synthetic_batch(config, s.mesh, s.image_shape)
  else:
    train_step = steps.compile_multi_train_step(s)
    batch = _synthetic_batch(config, s.mesh, s.image_shape, leading=(per_call,))
  jax.block_until_ready((state, batch))
  with CompileCounter() as compiling:
    t0 = time.perf_counter()
    compiled = train_step.lower(state, batch).compile()
    compile_seconds = time.perf_counter() - t0
  return Prepared(
    train_step,
    state,
    batch,
    per_call,
    compile_seconds,
    _flops(compiled) / per_call,
    compiling.cache_hits > 0,
  )


def time_calls(train_step, state, batch, calls: int):
  """Calls `train_step` `calls` times and waits for the last; returns (state, seconds)."""
  t0 = time.perf_counter()
  for _ in range(calls):
    state, metrics = train_step(state, batch)
  if calls:
    jax.block_until_ready((state, metrics))
  return state, time.perf_counter() - t0


def benchmark(config: ml_collections.ConfigDict, devices=None) -> BenchResult:
  """Compiles and times the config's train step on synthetic data.

  Args:
    config: the experiment config; `bench_warmup_steps`, `bench_steps` and
      `steps_per_call` say how many steps are run and how.
    devices: the devices of the mesh (default: all).

  Returns:
    The measurements.
  """
  p = prepare(config, devices)
  warmup_calls = math.ceil(config.bench_warmup_steps / p.steps_per_call)
  timed_calls = math.ceil(config.bench_steps / p.steps_per_call)
  with CompileCounter() as recompiling:  # the jitted step reuses prepare's compilation
    state, _ = time_calls(p.train_step, p.state, p.batch, warmup_calls)
    _, seconds = time_calls(p.train_step, state, p.batch, timed_calls)
  step_seconds = seconds / (timed_calls * p.steps_per_call)
  device = (devices or jax.devices())[0]
  return BenchResult(
    step_seconds=step_seconds,
    timed_steps=timed_calls * p.steps_per_call,
    warmup_steps=warmup_calls * p.steps_per_call,
    images_per_sec=config.batch_size / step_seconds,
    compile_seconds=p.compile_seconds,
    flops_per_step=p.flops_per_step,
    peak_flops=peak_flops(device.device_kind, bool(config.half_precision)),
    recompilations=recompiling.compiles + recompiling.cache_hits,
    from_cache=p.from_cache,
  )


def format_result(config: ml_collections.ConfigDict, result: BenchResult, devices=None) -> str:
  """The report; the last line is `images_per_sec=<float> compile_seconds=<float>`."""
  devices = jax.devices() if devices is None else devices
  n = len(devices)
  dtype = jnp.dtype(setup.compute_dtype(config)).name
  h, w, c = preprocess.model_input_shape(config.input)
  r = result
  achieved = r.flops_per_step / r.step_seconds
  if r.mfu is None:
    mfu = (
      f'MFU: unknown peak for device kind {devices[0].device_kind!r} '
      f'(achieved {achieved / 1e9:,.1f} GFLOP/s per device)'
    )
  else:
    mfu = (
      f'MFU: {100 * r.mfu:.1f}% ({achieved / 1e12:,.1f} of '
      f'{r.peak_flops / 1e12:,.0f} TFLOP/s per {devices[0].device_kind})'
    )
  calls = '' if config.steps_per_call == 1 else f', {config.steps_per_call} per call'
  cache = ' (loaded from the persistent compilation cache)' if r.from_cache else ''
  lines = [
    f'bench: {config.model.name}, {h}x{w}x{c} input, {dtype}, batch '
    f'{config.batch_size} on {n} {devices[0].platform} device(s)',
    f'compile: {r.compile_seconds:.2f} s{cache}',
    f'step: {1e3 * r.step_seconds:.3f} ms (mean of {r.timed_steps} steps after '
    f'{r.warmup_steps} warm-up{calls}); {r.images_per_sec:,.1f} images/s',
    f'XLA flops per step: {r.flops_per_step / 1e9:,.3f} GFLOP per device; {mfu}',
    f'recompilations after the first step: {r.recompilations}',
    f'images_per_sec={r.images_per_sec:.2f} compile_seconds={r.compile_seconds:.3f}',
  ]
  return '\n'.join(lines)


def run(config: ml_collections.ConfigDict, devices=None) -> BenchResult:
  """`--mode=bench`: benchmarks the config's train step and prints the report."""
  result = benchmark(config, devices)
  platform = (devices or jax.devices())[0].platform
  for line in system.notes(config, platform):
    print(line, flush=True)
  print(format_result(config, result, devices), flush=True)
  return result
