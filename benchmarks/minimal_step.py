"""A minimal hand-written train step for CIFAR ResNet-20: the baseline of --mode=bench.

The same flax model as `cifar_resnet20` (models/resnet.py) and the same work per step as
the CIFAR recipe's (configs/cifar10_resnet.py:20): uint8 images normalized on the
device, optionally the pad-4 random crop and random flip, forward and backward in
training mode (BatchNorm statistics of the batch), L2 weight decay 1e-4 on every
parameter, SGD with momentum 0.9. No mesh, no train state, no optax, no config: one
`jax.jit` with the buffers donated, on one device, over one random batch already there,
with XLA's default options and JAX's own backward passes. `--mode=bench` adds the
per-platform settings of `config.system` (train_lib/system.py); with
`--config.system.xla_options=default --config.system.backward=xla` it should be within
a few percent of this, or the library adds work to the step.

  python benchmarks/minimal_step.py [--batch_size=128] [--steps=50] [--no-augment]
      [--dtype=bfloat16] [--compare]
  python main.py --config=configs/cifar10_resnet.py:20 --mode=bench   # the library's

Timing as in --mode=bench: compile on its own, `--warmup` steps untimed, then `--steps`
timed, in `--rounds` rounds each ending with a wait (the median and best round are
printed too: on a shared machine the best is the least disturbed). `--compare` also
builds the library's step as --mode=bench does (`train_lib.modes.bench.prepare`, one device)
and alternates rounds of the two, so that both see the same load on a shared machine;
it prints both rates and their ratio. The last line is `images_per_sec=<float>
compile_seconds=<float>` of the minimal step.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models import resnet  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10's per-channel statistics on [0, 1]
STD = (0.2470, 0.2435, 0.2616)
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, PAD = 0.1, 0.9, 1e-4, 4


def make_step(model, augment: bool):
  """The step: (params, batch_stats, momentum, count, images, labels) -> state + loss."""

  def preprocess(images, key):
    x = (images.astype(jnp.float32) / 255.0 - jnp.asarray(MEAN)) / jnp.asarray(STD)
    if not augment:
      return x
    n, h, w, _ = x.shape
    crop_key, flip_key = jax.random.split(key)
    padded = jnp.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    offsets = jax.random.randint(crop_key, (n, 2), 0, 2 * PAD + 1)
    x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1])))(
      padded, offsets
    )
    flip = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
    return jnp.where(flip, x[:, :, ::-1, :], x)

  def step(params, batch_stats, momentum, count, images, labels):
    x = preprocess(images, jax.random.fold_in(jax.random.PRNGKey(0), count))

    def loss_fn(params):
      logits, new = model.apply(
        {'params': params, 'batch_stats': batch_stats}, x, train=True, mutable=['batch_stats']
      )
      logp = jax.nn.log_softmax(logits.astype(jnp.float32))
      loss = -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
      return loss, new['batch_stats']

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = jax.tree.map(lambda g, p: g + WEIGHT_DECAY * p, grads, params)
    momentum = jax.tree.map(lambda m, g: MOMENTUM * m + g, momentum, grads)
    params = jax.tree.map(lambda p, m: p - LEARNING_RATE * m, params, momentum)
    return params, batch_stats, momentum, count + 1, loss

  return jax.jit(step, donate_argnums=(0, 1, 2, 3))


def _library_config(args):
  """The recipe's config (configs/cifar10_resnet.py:20) with this script's options."""
  from configs import cifar10_resnet

  config = cifar10_resnet.get_config('20')
  config.batch_size = args.batch_size
  config.half_precision = args.dtype == 'bfloat16'
  if not args.augment:
    config.input.crop_padding, config.input.random_flip = 0, False
  return config


def _timed(run, n):
  """Runs `run()` n times, waits for the result; returns it, wall and CPU seconds."""
  wall, cpu = time.perf_counter(), time.process_time()
  out = None
  for _ in range(n):
    out = run()
  jax.block_until_ready(out)
  return out, time.perf_counter() - wall, time.process_time() - cpu


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=128)
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--augment', action=argparse.BooleanOptionalAction, default=True)
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  parser.add_argument(
    '--compare',
    action='store_true',
    help="also time the library's step (--mode=bench's, one device), "
    'in alternating rounds, so both see the same machine load',
  )
  parser.add_argument(
    '--rounds', type=int, default=5, help='the timed steps are split into this many rounds'
  )
  args = parser.parse_args()

  model = resnet.CifarResNet(depth=20, num_classes=10, dtype=jnp.dtype(args.dtype))
  image_key, label_key, init_key = jax.random.split(jax.random.PRNGKey(0), 3)
  images = jax.random.randint(image_key, (args.batch_size, 32, 32, 3), 0, 256, jnp.int32).astype(
    jnp.uint8
  )
  labels = jax.random.randint(label_key, (args.batch_size,), 0, 10, jnp.int32)
  variables = jax.jit(lambda k: model.init(k, jnp.zeros((1, 32, 32, 3)), train=False))(init_key)
  params, batch_stats = variables['params'], variables['batch_stats']
  momentum = jax.tree.map(jnp.zeros_like, params)
  count = jnp.zeros((), jnp.int32)
  step = make_step(model, args.augment)
  jax.block_until_ready((params, momentum, images, labels))

  t0 = time.perf_counter()
  step.lower(params, batch_stats, momentum, count, images, labels).compile()
  compile_seconds = time.perf_counter() - t0
  state = (params, batch_stats, momentum, count)

  def minimal():
    nonlocal state
    *state, loss = step(*state, images, labels)
    return state, loss

  library = None
  if args.compare:
    from train_lib.modes import bench

    lib = bench.prepare(_library_config(args), jax.devices()[:1])
    lib_state = lib.state

    def library():
      nonlocal lib_state
      lib_state, metrics = lib.train_step(lib_state, lib.batch)
      return lib_state, metrics

  runs = {'minimal': minimal, 'library': library} if library else {'minimal': minimal}
  for run in runs.values():
    _timed(run, args.warmup)
  rounds = {name: [] for name in runs}  # (wall, cpu) seconds per step of each round
  per_round = -(-args.steps // args.rounds)
  for i in range(args.rounds):
    order = list(runs.items())
    for name, run in order[::-1] if i % 2 else order:  # each goes first half the time
      _, w, c = _timed(run, per_round)
      rounds[name].append((w / per_round, c / per_round))
  n = per_round * args.rounds
  device = jax.devices()[0]
  print(
    f'cifar ResNet-20, {args.dtype}, batch {args.batch_size}, augment {args.augment}, '
    f'one {device.platform} device ({device.device_kind}); {n} steps in '
    f'{args.rounds} rounds after {args.warmup} warm-up'
  )
  mean, best = {}, {}
  for name, times in rounds.items():
    walls = sorted(w for w, _ in times)
    mean[name], best[name] = sum(walls) / len(walls), walls[0]
    print(
      f'{name} step: {1e3 * mean[name]:.3f} ms, {args.batch_size / mean[name]:,.1f} '
      f'images/s; per-round median {1e3 * walls[len(walls) // 2]:.3f} ms, best '
      f'{1e3 * walls[0]:.3f} ms; {sum(c for _, c in times) / len(times):.3f} CPU '
      'seconds per step'
    )
  if library:
    print(
      f'library / minimal images/s: {mean["minimal"] / mean["library"]:.3f} '
      f'(best rounds: {best["minimal"] / best["library"]:.3f}); '
      f'library compile: {lib.compile_seconds:.2f} s'
    )
  print(f'minimal compile: {compile_seconds:.2f} s')
  print(
    f'images_per_sec={args.batch_size / mean["minimal"]:.2f} compile_seconds={compile_seconds:.3f}'
  )


if __name__ == '__main__':
  main()
