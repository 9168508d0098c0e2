"""Speed of the input pipelines: host streaming of ImageNet-size JPEGs, device-resident CIFAR.

  python benchmarks/input_pipeline.py [--images=512] [--threads=1,0] [--batch_size=256]
      [--seconds=20] [--cifar_steps=300]

Host (input_pipeline/stream.py, the feed of the ImageNet configs): `--images` synthetic
500x375 JPEGs (ImageNet's most common size; smooth random fields with grain, so they
compress about as photos do) are written once as a TFDS `imagenet2012` dataset in a
temporary directory, then read by the real training stream (records cached in memory,
shuffled, an Inception random resized crop decoded with `decode_and_crop_jpeg` and
resized to 224, batched) and the evaluation stream (decoded, resized to 256, central
224 crop), with each of `--threads` tf.data threads (0: one per core). Printed: images/s,
and images per CPU-second of this process, which is the per-core rate and, unlike
images/s, holds on a machine shared with other jobs.

Device-resident (input_pipeline/resident.py, the feed of the CIFAR configs): CIFAR's
50,000 training images (random uint8) replicated on the devices; each step gathers its
batch of 128 by (seed, step) and pads, crops, flips and normalizes it, as the CIFAR
train step does before the model. Printed: images/s.

The last line is `host_images_per_sec_per_core=<float> device_resident_images_per_sec=
<float>` (the single-thread training stream, and the CIFAR pipeline).
"""

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from configs import cifar10_resnet, imagenet_resnet  # noqa: E402
from input_pipeline import batches, preprocess, resident, stream  # noqa: E402
from train_lib import sharding  # noqa: E402

HEIGHT, WIDTH = 375, 500


def _photo_like(rng) -> np.ndarray:
  """A smooth random field with grain: compresses about as a photo does."""
  small = rng.uniform(0, 255, (HEIGHT // 16 + 2, WIDTH // 16 + 2, 3)).astype(np.float32)
  image = tf.image.resize(small[None], (HEIGHT, WIDTH), 'bicubic')[0].numpy()
  image += rng.normal(0, 6, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic_imagenet(data_dir: str, num_images: int):
  """A TFDS imagenet2012 dataset of synthetic JPEGs, written by TFDS's own builder."""
  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  rng = np.random.default_rng(0)

  def examples(n, offset):
    for i in range(n):
      yield (
        offset + i,
        {'image': _photo_like(rng), 'label': i % 1000, 'file_name': f'synthetic_{offset + i}.JPEG'},
      )

  builder._split_generators = lambda dl_manager: {
    'train': examples(num_images, 0),
    'validation': examples(num_images // 4, 10**6),
  }
  builder.download_and_prepare()
  return tfds.builder('imagenet2012', data_dir=data_dir)


def time_stream(ds, seconds: float):
  """(images/s, images per CPU-second) of iterating `ds` for about `seconds` (padding
  of evaluation batches not counted)."""
  options = tf.data.Options()
  options.threading.max_intra_op_parallelism = 1
  it = iter(tfds.as_numpy(ds.with_options(options)))
  for _ in range(3):  # warm-up: the record cache fills, threads start
    next(it)
  images, t0, c0 = 0, time.perf_counter(), time.process_time()
  while time.perf_counter() - t0 < seconds:
    batch = next(it)
    images += int(batch['mask'].sum()) if 'mask' in batch else len(batch['label'])
  wall, cpu = time.perf_counter() - t0, time.process_time() - c0
  return images / wall, images / cpu


def bench_host(args) -> float:
  """Prints the host pipeline's rates; returns the 1-thread training images per CPU-s."""
  data_dir = args.data_dir or tempfile.mkdtemp(prefix='input_bench_')
  try:
    t0 = time.perf_counter()
    builder = write_synthetic_imagenet(data_dir, args.images)
    size = stream.encoded_mb(builder, 'train') * 2**20 / args.images
    print(
      f'host: {args.images} synthetic {WIDTH}x{HEIGHT} JPEGs, {size / 1e3:.0f} kB '
      f'each on average, written in {time.perf_counter() - t0:.1f} s; '
      f'{os.cpu_count()} cores',
      flush=True,
    )
    config = imagenet_resnet.get_config('50').input
    per_core = None
    for threads in args.threads:
      config.host_threads = threads
      n = threads or os.cpu_count()
      train = stream.train_dataset(builder, 'train', config, args.batch_size, seed=0)
      rate, per_cpu = time_stream(train, args.seconds)
      print(
        f'  train (random resized crop 224, decode_and_crop), {n} thread(s): '
        f'{rate:,.1f} images/s, {per_cpu:,.1f} images per CPU-second',
        flush=True,
      )
      per_core = per_cpu if per_core is None else per_core
      # One batch of all the validation images: no padding.
      evals = stream.eval_dataset(builder, 'validation', config, args.images // 4)
      rate, per_cpu = time_stream(evals.repeat(), args.seconds / 2)
      print(
        f'  eval (resize 256, centre crop 224), {n} thread(s): {rate:,.1f} images/s, '
        f'{per_cpu:,.1f} images per CPU-second',
        flush=True,
      )
    return per_core
  finally:
    if not args.data_dir:
      shutil.rmtree(data_dir, ignore_errors=True)


def bench_device_resident(args) -> float:
  """Prints and returns the device-resident CIFAR pipeline's images/s."""
  config = cifar10_resnet.get_config('20')
  mesh = sharding.create_mesh()
  n, batch_size = 50_000, config.batch_size
  data = {
    'image': np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), np.uint8),
    'label': np.zeros(n, np.int32),
  }
  data = resident.put_replicated(data, mesh)
  perm = resident.put_replicated(batches.epoch_permutation(n, 0, 0).astype(np.int32), mesh)

  @functools.partial(jax.jit, out_shardings=sharding.batch_sharding(mesh))
  def pipeline(data, perm, step):  # what the CIFAR train step does before the model
    batch = resident.take_batch(data, perm, step, batch_size, sharding.batch_sharding(mesh))
    images = preprocess.normalize(batch['image'], config.input)
    key = jax.random.fold_in(jax.random.PRNGKey(0), step)
    return preprocess.augment(images, key, config.input)

  jax.block_until_ready(pipeline(data, perm, 0))  # compile
  t0 = time.perf_counter()
  for step in range(args.cifar_steps):
    out = pipeline(data, perm, step)
  jax.block_until_ready(out)
  rate = args.cifar_steps * batch_size / (time.perf_counter() - t0)
  print(
    f'device-resident CIFAR-10 (gather + pad-4 crop + flip + normalize, batch '
    f'{batch_size}) on {mesh.devices.size} {jax.devices()[0].platform} device(s): '
    f'{rate:,.0f} images/s',
    flush=True,
  )
  return rate


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--images', type=int, default=512)
  parser.add_argument(
    '--threads', default='1,0', help='comma-separated tf.data thread counts (0: one per core)'
  )
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--seconds', type=float, default=20.0, help='per measurement')
  parser.add_argument('--cifar_steps', type=int, default=300)
  parser.add_argument(
    '--data_dir', default='', help='where to write the synthetic JPEGs (default: a temp dir)'
  )
  args = parser.parse_args()
  args.threads = [int(t) for t in args.threads.split(',')]
  per_core = bench_host(args)
  rate = bench_device_resident(args)
  print(f'host_images_per_sec_per_core={per_core:.1f} device_resident_images_per_sec={rate:.1f}')


if __name__ == '__main__':
  main()
