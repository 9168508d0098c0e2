"""Our training step against PyTorch's on this CPU, side by side in one run.

  python benchmarks/vs_pytorch.py                       # ResNet-20 and LeNet-5, fp32 + bf16
  python benchmarks/vs_pytorch.py --models=resnet20 --dtypes=float32 --steps=60
  python benchmarks/vs_pytorch.py --nchw   # also PyTorch's default NCHW memory format

For each model and precision it builds two training steps that do the same work on the
same batch of 128 random uint8 images:
- ours: `--mode=bench`'s step (`train_lib.modes.bench.prepare`: the config's model, optax
  optimizer, on-device normalisation and augmentation, one device);
- PyTorch: the same architecture in eager mode in its best CPU configuration
  (channels_last memory format, `torch.autocast('cpu', torch.bfloat16)` for bf16), the
  same normalisation and augmentation (4-pixel pad and random crop, random flip; none
  for LeNet-5), cross-entropy and SGD with momentum 0.9 and weight decay 1e-4.
Both use every core (XLA's default; `torch.set_num_threads(os.cpu_count())`). Rounds of
the two alternate, each going first half the time, so both see the same load on a
shared machine; it prints images/s of each (mean over rounds, and the best round) and
the ratio ours / PyTorch. Models: CIFAR ResNet-20 (configs/cifar10_resnet.py:20, option
A shortcuts) and LeNet-5 as tutorials write it (`lenet5_modern`: ReLU, max pooling, full
C3) on 32x32x1.
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.modules.setdefault('triton', None)  # crashes beside jaxlib's LLVM; unused on CPU
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train_lib.modes import bench  # noqa: E402

BATCH = 128


class _CifarBlock(nn.Module):
  """Basic block with the option-A shortcut (zero-padded identity)."""

  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.stride, self.pad = stride, cout - cin

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    s = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
    if self.pad:
      s = nn.functional.pad(s, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
    return torch.relu(y + s)


def torch_resnet20() -> nn.Module:
  layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
  cin = 16
  for i, cout in enumerate((16, 32, 64)):
    for j in range(3):
      layers.append(_CifarBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
      cin = cout
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
  return nn.Sequential(*layers)


def torch_lenet5() -> nn.Module:
  return nn.Sequential(
    nn.Conv2d(1, 6, 5),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(400, 120),
    nn.ReLU(),
    nn.Linear(120, 84),
    nn.ReLU(),
    nn.Linear(84, 10),
  )


def our_config(model: str, dtype: str):
  """The library config of the comparison (its recipe's model, optimizer, input)."""
  if model == 'resnet20':
    from configs import cifar10_resnet

    config = cifar10_resnet.get_config('20')
  else:
    from configs import mnist_lenet5

    config = mnist_lenet5.get_config()
    config.model.name = 'lenet5_modern'
    config.input.pad_to, config.input.image_size = 0, 32
    config.momentum, config.weight_decay = 0.9, 1e-4
  config.batch_size = BATCH
  config.half_precision = dtype == 'bfloat16'
  return config


class TorchStep:
  """One PyTorch training step on a fixed uint8 batch, as the library's step does it."""

  def __init__(self, model: str, dtype: str, channels_last: bool = True):
    torch.manual_seed(0)
    self.net = torch_resnet20() if model == 'resnet20' else torch_lenet5()
    self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
    self.net = self.net.to(memory_format=self.memory_format).train()
    channels = 3 if model == 'resnet20' else 1
    self.images = torch.randint(0, 256, (BATCH, channels, 32, 32), dtype=torch.uint8)
    self.labels = torch.randint(0, 10, (BATCH,))
    self.augment = model == 'resnet20'
    self.bf16 = dtype == 'bfloat16'
    self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    self.mean = torch.full((1, channels, 1, 1), 0.48)
    self.std = torch.full((1, channels, 1, 1), 0.25)

  def _inputs(self):
    x = (self.images.float() / 255.0 - self.mean) / self.std
    if self.augment:
      padded = nn.functional.pad(x, (4, 4, 4, 4))
      dy, dx = np.random.randint(0, 9, 2)
      x = padded[:, :, dy : dy + 32, dx : dx + 32]
      flip = torch.rand(BATCH, 1, 1, 1) < 0.5
      x = torch.where(flip, x.flip(3), x)
    return x.contiguous(memory_format=self.memory_format)

  def __call__(self):
    self.opt.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.bf16):
      logits = self.net(self._inputs())
    loss = nn.functional.cross_entropy(logits.float(), self.labels)
    loss.backward()
    self.opt.step()
    return loss


class OurStep:
  """The library's `--mode=bench` step, one device, state threaded through calls."""

  def __init__(self, model: str, dtype: str):
    self.prepared = bench.prepare(our_config(model, dtype), jax.devices()[:1])
    self.state = self.prepared.state

  def __call__(self):
    self.state, metrics = self.prepared.train_step(self.state, self.prepared.batch)
    return metrics

  @staticmethod
  def wait(out):
    jax.block_until_ready(out)


def _round(step, n: int, wait) -> float:
  t0 = time.perf_counter()
  out = None
  for _ in range(n):
    out = step()
  wait(out)
  return (time.perf_counter() - t0) / n


def compare(
  model: str, dtype: str, steps: int, rounds: int, warmup: int, nchw: bool = False
) -> dict:
  """Times the steps in alternating rounds; returns images/s of each and the ratio."""
  runs = {
    'ours': (OurStep(model, dtype), OurStep.wait),
    'pytorch': (TorchStep(model, dtype), lambda out: out.item()),
  }
  if nchw:
    runs['pytorch_nchw'] = (TorchStep(model, dtype, channels_last=False), lambda out: out.item())
  for step, wait in runs.values():
    _round(step, warmup, wait)
  per_round = max(1, steps // rounds)
  times = {name: [] for name in runs}
  for i in range(rounds):
    order = list(runs.items())
    for name, (step, wait) in order[::-1] if i % 2 else order:
      times[name].append(_round(step, per_round, wait))
  result = {}
  for name, t in times.items():
    result[name] = BATCH / (sum(t) / len(t))
    result[name + '_best'] = BATCH / min(t)
  result['ratio'] = result['ours'] / result['pytorch']
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--models', default='resnet20,lenet5')
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--steps', type=int, default=40, help='timed steps of each')
  parser.add_argument('--rounds', type=int, default=4)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument(
    '--nchw', action='store_true', help='also time PyTorch in its default NCHW memory format'
  )
  args = parser.parse_args()
  torch.set_num_threads(os.cpu_count())
  print(
    f'{os.cpu_count()} cores; jax {jax.__version__} ({jax.devices()[0].device_kind}), '
    f'torch {torch.__version__}; batch {BATCH}; load average '
    f'{os.getloadavg()[0]:.2f}'
  )
  print(
    f'{"model":<10} {"dtype":<9} {"ours img/s":>11} {"pytorch img/s":>14} '
    f'{"ours/pytorch":>13}   (best rounds)'
  )
  for model in args.models.split(','):
    for dtype in args.dtypes.split(','):
      r = compare(model, dtype, args.steps, args.rounds, args.warmup, args.nchw)
      nchw = (
        f'; PyTorch NCHW {r["pytorch_nchw"]:,.0f} ({r["pytorch_nchw_best"]:,.0f})'
        if args.nchw
        else ''
      )
      print(
        f'{model:<10} {dtype:<9} {r["ours"]:>11,.0f} {r["pytorch"]:>14,.0f} '
        f'{r["ratio"]:>13.2f}   ({r["ours_best"]:,.0f} vs {r["pytorch_best"]:,.0f}{nchw})',
        flush=True,
      )


if __name__ == '__main__':
  main()
