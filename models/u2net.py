"""U^2-Net (Qin, Zhang, Huang, Dehghan, Zaiane and Jagersand 2020, "U^2-Net: going
deeper with nested U-structure for salient object detection", arXiv 2005.09007, Fig. 2
and 5, Table 1), as the authors' code (xuebinqin/U-2-Net, model/u2net.py).

REBNCONV: 3x3 conv with bias, padding = dilation = d, then BatchNorm and ReLU.
RSU-L (residual U-block of height L, Fig. 2e): rebnconvin maps the input to `out`
channels (hxin); a small U-Net on `mid` channels follows: rebnconv1, then L - 2 times
2x2/2 max pooling (ceil mode) and a rebnconv, then rebnconvL dilated by 2 at the
bottom; going up, rebnconv{i}d on [the map from below, the encoder map i], bilinearly
resized (align_corners=False) to the size of the next skip; rebnconv1d gives `out`
channels; the output is that plus hxin. RSU-4F has no pooling: dilations 1, 2, 4, 8 going
down and 4, 2, 1 coming back. U^2-Net (Fig. 5) is a U-Net of such blocks: stages 1-6
(RSU-7, 6, 5, 4, 4F, 4F) with ceil-mode 2x2/2 pooling between them, stages 5d-1d
(4F, 4, 5, 6, 7) on [up-sampled, skip]; six side outputs, a 3x3 conv to `num_classes`
on stages 1d-5d and 6, each bilinearly resized to the input size, and their fusion, a
1x1 conv over the six. 44,009,869 parameters for u2net, 1,131,181 for u2netp (U^2-Net
dagger: every stage mid 16, out 64), at 3 input channels and 1 class.

Outputs are logits, not the repository's sigmoids: the model returns the fused map
(N, H, W, num_classes), float32, and sows the six side outputs (float32, input size) as
`aux_logits/side_1` .. `side_6` (apply with `mutable=['batch_stats', 'aux_logits']`;
each leaf a 1-tuple, flax's sow format) for the deep-supervision loss (section 3.3: the
sum of the BCE of the fusion and of every side output). Initialisation is PyTorch's
default, which the authors kept: weights and biases uniform in +-1/sqrt(fan_in).

Module names are the repository's, so u2net.pth / u2netp.pth convert key by key:
`stage1.rebnconvin.conv_s1.weight` -> params['stage1']['rebnconvin']['conv_s1']
['kernel'] (OIHW -> HWIO), `...bn_s1.running_mean` -> batch_stats[...]['bn_s1']
['mean'], `side1`..`side6`, `outconv`.
"""

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from models.batch_norm import torch_batch_norm
from models.conv import Conv
from models.initializers import torch_bias_init, torch_kernel_init
from models.pooling import max_pool
from models.resampling import resize_bilinear


class Stage(NamedTuple):
  """One RSU block: its height L, whether it is the dilated 'F' form, mid and out maps."""

  height: int
  dilated: bool
  mid: int
  out: int


def _rsu(spec: str, mid: int, out: int) -> Stage:
  return Stage(int(spec[0]), spec.endswith('F'), mid, out)


# Fig. 5 / Table 1 (and model/u2net.py): encoder stages 1-6, decoder stages 5d-1d.
CONFIGS = {
  'u2net': dict(
    encoder=(
      _rsu('7', 32, 64),
      _rsu('6', 32, 128),
      _rsu('5', 64, 256),
      _rsu('4', 128, 512),
      _rsu('4F', 256, 512),
      _rsu('4F', 256, 512),
    ),
    decoder=(
      _rsu('4F', 256, 512),
      _rsu('4', 128, 256),
      _rsu('5', 64, 128),
      _rsu('6', 32, 64),
      _rsu('7', 16, 64),
    ),
  ),
  'u2netp': dict(
    encoder=(
      _rsu('7', 16, 64),
      _rsu('6', 16, 64),
      _rsu('5', 16, 64),
      _rsu('4', 16, 64),
      _rsu('4F', 16, 64),
      _rsu('4F', 16, 64),
    ),
    decoder=(
      _rsu('4F', 16, 64),
      _rsu('4', 16, 64),
      _rsu('5', 16, 64),
      _rsu('6', 16, 64),
      _rsu('7', 16, 64),
    ),
  ),
}


def _conv(features: int, kernel: int, in_features: int, dilation: int = 1, **kw):
  """A PyTorch-initialised conv with padding keeping the size (dilation d, padding d)."""
  pad = dilation * (kernel // 2)
  fan_in = kernel * kernel * in_features
  return Conv(
    features,
    (kernel, kernel),
    padding=pad,
    kernel_dilation=dilation,
    kernel_init=torch_kernel_init,
    bias_init=torch_bias_init(fan_in),
    **kw,
  )


class REBNCONV(nn.Module):
  """3x3 conv (dilation d, padding d, bias) -> BatchNorm -> ReLU."""

  features: int
  dilation: int = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = _conv(
      self.features,
      3,
      x.shape[-1],
      self.dilation,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='conv_s1',
    )(x)
    x = torch_batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype)(name='bn_s1')(x)
    return nn.relu(x)


class RSU(nn.Module):
  """Residual U-block RSU-L (Fig. 2e), or RSU-LF with dilations instead of pooling."""

  stage: Stage
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    height, dilated, mid, out = self.stage
    block = functools.partial(REBNCONV, dtype=self.dtype, param_dtype=self.param_dtype)
    # RSU-LF dilates by 2**(i-1) at level i; RSU-L pools instead, dilating only the bottom.
    rate = (lambda i: 2 ** (i - 1)) if dilated else (lambda i: 2 if i == height else 1)

    hxin = block(out, name='rebnconvin')(x, train=train)
    h = block(mid, rate(1), name='rebnconv1')(hxin, train=train)
    encoder = [h]
    for i in range(2, height):
      if not dilated:
        h = max_pool(h, 2, 2, ceil_mode=True)
      h = block(mid, rate(i), name=f'rebnconv{i}')(h, train=train)
      encoder.append(h)
    h = block(mid, rate(height), name=f'rebnconv{height}')(h, train=train)
    for i in range(height - 1, 0, -1):
      skip = encoder[i - 1]
      h = resize_bilinear(h, skip.shape[1:3])  # the identity at the bottom and in 'F'
      h = block(mid if i > 1 else out, rate(i), name=f'rebnconv{i}d')(
        jnp.concatenate([h, skip], axis=-1), train=train
      )
    return h + hxin


class U2Net(nn.Module):
  """U^2-Net (Fig. 5): six RSU encoder stages, five decoder stages, seven outputs."""

  config: str = 'u2net'  # a key of CONFIGS
  num_classes: int = 1
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.config not in CONFIGS:
      raise ValueError(f"unknown U^2-Net config '{self.config}'; valid: {', '.join(CONFIGS)}")
    cfg = CONFIGS[self.config]
    common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    size = x.shape[1:3]

    h = x.astype(self.dtype)
    encoder = []
    for s, stage in enumerate(cfg['encoder'], 1):
      if s > 1:
        h = max_pool(h, 2, 2, ceil_mode=True)  # pool12 .. pool56
      h = RSU(stage, name=f'stage{s}', **common)(h, train=train)
      encoder.append(h)
    decoder = {6: h}
    for s, stage in zip(range(5, 0, -1), cfg['decoder']):
      skip = encoder[s - 1]
      h = resize_bilinear(h, skip.shape[1:3])
      h = RSU(stage, name=f'stage{s}d', **common)(jnp.concatenate([h, skip], axis=-1), train=train)
      decoder[s] = h

    sides = []
    for s in range(1, 7):
      d = _conv(self.num_classes, 3, decoder[s].shape[-1], name=f'side{s}', **common)(decoder[s])
      sides.append(resize_bilinear(d, size).astype(jnp.float32))
    fused = _conv(self.num_classes, 1, 6 * self.num_classes, name='outconv', **common)(
      jnp.concatenate(sides, axis=-1).astype(self.dtype)
    )
    if not self.is_initializing():
      for s, d in enumerate(sides, 1):
        self.sow('aux_logits', f'side_{s}', d)  # deep supervision (section 3.3)
    return fused.astype(jnp.float32)


MODELS = {
  'u2net': functools.partial(U2Net, config='u2net'),
  'u2netp': functools.partial(U2Net, config='u2netp'),
}
