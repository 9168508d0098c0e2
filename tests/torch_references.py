"""PyTorch reference networks of repositories that are not pip packages, written after
their code with the same module names, so their state dicts have the same keys:
milesial/Pytorch-UNet (unet/unet_parts.py, `bilinear=False`) and xuebinqin/U-2-Net
(model/u2net.py, U2NETP). Used by tests/test_pretrained.py as the originals."""

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Module):
  """(conv 3x3, no bias => BN => ReLU) x 2."""

  def __init__(self, cin, cout, mid=None):
    super().__init__()
    mid = mid or cout
    self.double_conv = nn.Sequential(
      nn.Conv2d(cin, mid, 3, padding=1, bias=False),
      nn.BatchNorm2d(mid),
      nn.ReLU(inplace=True),
      nn.Conv2d(mid, cout, 3, padding=1, bias=False),
      nn.BatchNorm2d(cout),
      nn.ReLU(inplace=True),
    )

  def forward(self, x):
    return self.double_conv(x)


class Down(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

  def forward(self, x):
    return self.maxpool_conv(x)


class Up(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
    self.conv = DoubleConv(cin, cout)

  def forward(self, x1, x2):
    x1 = self.up(x1)
    dy, dx = x2.size(2) - x1.size(2), x2.size(3) - x1.size(3)
    x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
    return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, kernel_size=1)

  def forward(self, x):
    return self.conv(x)


class UNet(nn.Module):
  """milesial's UNet with a base width and a depth (4 and 64 there)."""

  def __init__(self, n_channels, n_classes, base=64, depth=4):
    super().__init__()
    widths = [base * 2**i for i in range(depth + 1)]
    self.depth = depth
    self.inc = DoubleConv(n_channels, widths[0])
    for k in range(1, depth + 1):
      setattr(self, f'down{k}', Down(widths[k - 1], widths[k]))
      setattr(self, f'up{k}', Up(widths[depth - k + 1], widths[depth - k]))
    self.outc = OutConv(widths[0], n_classes)

  def forward(self, x):
    xs = [self.inc(x)]
    for k in range(1, self.depth + 1):
      xs.append(getattr(self, f'down{k}')(xs[-1]))
    x = xs.pop()
    for k in range(1, self.depth + 1):
      x = getattr(self, f'up{k}')(x, xs.pop())
    return self.outc(x)


class REBNCONV(nn.Module):
  def __init__(self, in_ch, out_ch, dirate=1):
    super().__init__()
    self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
    self.bn_s1 = nn.BatchNorm2d(out_ch)
    self.relu_s1 = nn.ReLU(inplace=True)

  def forward(self, x):
    return self.relu_s1(self.bn_s1(self.conv_s1(x)))


def _upsample_like(src, tar):
  return F.interpolate(src, size=tar.shape[2:], mode='bilinear')


class RSU(nn.Module):
  """RSU-L (max pooling between levels) or RSU-LF (dilations 1, 2, 4, 8 instead)."""

  def __init__(self, height, in_ch, mid_ch, out_ch, dilated=False):
    super().__init__()
    self.height, self.dilated = height, dilated
    rate = (lambda i: 2 ** (i - 1)) if dilated else (lambda i: 2 if i == height else 1)
    self.rebnconvin = REBNCONV(in_ch, out_ch, 1)
    self.rebnconv1 = REBNCONV(out_ch, mid_ch, rate(1))
    for i in range(2, height + 1):
      setattr(self, f'rebnconv{i}', REBNCONV(mid_ch, mid_ch, rate(i)))
    for i in range(height - 1, 0, -1):
      setattr(self, f'rebnconv{i}d', REBNCONV(2 * mid_ch, mid_ch if i > 1 else out_ch, rate(i)))
    self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

  def forward(self, x):
    hxin = self.rebnconvin(x)
    hx = self.rebnconv1(hxin)
    encoder = [hx]
    for i in range(2, self.height):
      hx = getattr(self, f'rebnconv{i}')(hx if self.dilated else self.pool(hx))
      encoder.append(hx)
    hx = getattr(self, f'rebnconv{self.height}')(hx)
    for i in range(self.height - 1, 0, -1):
      skip = encoder[i - 1]
      up = hx if self.dilated else _upsample_like(hx, skip)
      hx = getattr(self, f'rebnconv{i}d')(torch.cat((up, skip), 1))
    return hx + hxin


class U2NETP(nn.Module):
  """The small U^2-Net: every stage mid 16, out 64; returns the fused logits d0."""

  def __init__(self, in_ch=3, out_ch=1):
    super().__init__()
    self.stage1 = RSU(7, in_ch, 16, 64)
    self.stage2 = RSU(6, 64, 16, 64)
    self.stage3 = RSU(5, 64, 16, 64)
    self.stage4 = RSU(4, 64, 16, 64)
    self.stage5 = RSU(4, 64, 16, 64, dilated=True)
    self.stage6 = RSU(4, 64, 16, 64, dilated=True)
    self.stage5d = RSU(4, 128, 16, 64, dilated=True)
    self.stage4d = RSU(4, 128, 16, 64)
    self.stage3d = RSU(5, 128, 16, 64)
    self.stage2d = RSU(6, 128, 16, 64)
    self.stage1d = RSU(7, 128, 16, 64)
    for s in range(1, 7):
      setattr(self, f'side{s}', nn.Conv2d(64, out_ch, 3, padding=1))
    self.outconv = nn.Conv2d(6 * out_ch, out_ch, 1)
    self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

  def forward(self, x):
    encoder, hx = [], x
    for s in range(1, 7):
      hx = getattr(self, f'stage{s}')(hx if s == 1 else self.pool(hx))
      encoder.append(hx)
    decoder = {6: hx}
    for s in range(5, 0, -1):
      skip = encoder[s - 1]
      hx = getattr(self, f'stage{s}d')(torch.cat((_upsample_like(hx, skip), skip), 1))
      decoder[s] = hx
    d1 = self.side1(decoder[1])
    sides = [d1] + [_upsample_like(getattr(self, f'side{s}')(decoder[s]), d1) for s in range(2, 7)]
    return self.outconv(torch.cat(sides, 1))
