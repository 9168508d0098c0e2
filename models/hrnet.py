"""HRNet: a high-resolution stream kept through the whole network, lower resolutions
added as parallel streams that exchange information in every module (Wang et al. 2019,
"Deep High-Resolution Representation Learning for Visual Recognition", arXiv 1908.07919;
Sun et al. 2019, "Deep High-Resolution Representation Learning for Human Pose
Estimation", arXiv 1902.09212).

The backbone (section 3, Fig. 2): a stem of two 3x3 stride-2 convs to 1/4 resolution,
stage 1 (`layer1`: Bottlenecks at 1/4), then stages 2-4 of HighResolutionModules with
2, 3 and 4 streams (1/4, 1/8, 1/16, 1/32; channels C, 2C, 4C, 8C); a transition before
each adds the next stream. `STAGES` is the reference configs' per-stage table. Heads:

- `HRNet` (HRNet-C, ImageNet; HRNet-Image-Classification `cls_hrnet.py`): each stream
  through one Bottleneck to 128/256/512/1024 channels, merged from high to low
  resolution by 3x3 stride-2 convs (with bias) + BN + ReLU, a 1x1 conv to 2048 (with
  bias) + BN + ReLU, global average pooling and a linear classifier. Parameters:
  W18-Small-v1 13,187,464, v2 15,597,464; W18 21,299,004, W30 37,712,220,
  W32 41,232,680, W40 57,557,160, W44 67,064,984, W48 77,469,864, W64 128,059,944.
- `HRNetV2Seg` (HRNetV2, HRNet-Semantic-Segmentation `seg_hrnet.py`): the four streams
  bilinearly resized to 1/4 and concatenated, 1x1 conv (bias) + BN + ReLU and a 1x1
  classifier; logits at 1/4 of the input (the repo's loss resizes them to the labels).
  The fusions upsample bilinearly too. `align_corners=False` as every Cityscapes config
  sets it. 19 classes: W18-Small-v1 1,540,819, v2 3,939,579, W48 65,859,379.
- `PoseHRNet` (deep-high-resolution-net `pose_hrnet.py`): the last module outputs
  stream 0 only, a 1x1 conv (bias) gives one heatmap per joint at 1/4 resolution.
  17 joints: W32 28,536,113, W48 63,595,745.

BatchNorm: PyTorch momentum 0.1 (flax 0.9), eps 1e-5. Initialisation as each repo:
classification convs He-normal with fan-out (`kaiming_normal_(mode='fan_out')`);
segmentation and pose convs normal with std 0.001 (they train from ImageNet weights);
head biases and the linear classifier keep PyTorch's defaults (U(+-1/sqrt(fan_in))),
except the pose head's bias, which is 0.

Naming, for converting the repos' and timm's checkpoints: a PyTorch key becomes our
path with its ModuleList/Sequential indices made into names ('.' -> '/'):

  conv1 bn1 conv2 bn2               backbone/conv1 ...
  layer1.N.conv1                    backbone/layer1/block_N/conv1
  *.downsample.0, .1                */downsample_conv, */downsample_bn
  transitionT.I.0, .1               backbone/transitionT/branch_I/conv_0, bn_0
  transitionT.I.K.0, .1 (new)       backbone/transitionT/branch_I/conv_K, bn_K
  stageS.M.branches.B.N.conv1       backbone/stageS/module_M/branch_B/block_N/conv1
  stageS.M.fuse_layers.I.J.0, .1    backbone/stageS/module_M/fuse_I_J/conv_0, bn_0 (J > I)
  stageS.M.fuse_layers.I.J.K.0, .1  backbone/stageS/module_M/fuse_I_J/conv_K, bn_K (J < I)
  incre_modules.I.0.conv1           head/incre_I/block_0/conv1
  downsamp_modules.I.0, .1          head/downsamp_I/conv_0, bn_0
  final_layer.0, .1; classifier     head/final_layer/conv_0, bn_0; head/classifier (cls)
  last_layer.0, .1; last_layer.3    head/last_layer/conv_0, bn_0; head/classifier (seg)
  final_layer                       head/final_layer (pose)

Conv weights (O, I, kh, kw) become kernels (kh, kw, I, O); BN weight/bias are
scale/bias in 'params', running_mean/var are mean/var in 'batch_stats'.

Calling a model with `return_features=True` returns a dict instead of the output:
'stem' (1/4), 'layer1', 'stage2'..'stage4' (lists of streams, highest resolution first)
and 'logits'.
"""

from functools import partial
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax.numpy as jnp

from models.hrnet_blocks import Branch, ConvBNChain, Stage, Transition
from models.initializers import he_normal_fan_out, torch_bias_init, torch_kernel_init
from models.resampling import resize_bilinear
from models.resnet import BLOCKS, conv_and_norm


class StageConfig(NamedTuple):
  """One stage of the reference configs (`STAGE1`..`STAGE4` in experiments/*.yaml)."""

  num_modules: int
  num_branches: int
  block: str  # 'basic' | 'bottleneck'
  num_blocks: tuple[int, ...]  # residual blocks per branch
  num_channels: tuple[int, ...]  # planes per branch (x4 out for Bottlenecks)


def _wide(c: int) -> tuple[StageConfig, ...]:
  """W18 ... W64: 1, 1, 4, 3 modules of 4 blocks per branch, C, 2C, 4C, 8C channels."""
  return (
    StageConfig(1, 1, 'bottleneck', (4,), (64,)),
    StageConfig(1, 2, 'basic', (4, 4), (c, 2 * c)),
    StageConfig(4, 3, 'basic', (4, 4, 4), (c, 2 * c, 4 * c)),
    StageConfig(3, 4, 'basic', (4, 4, 4, 4), (c, 2 * c, 4 * c, 8 * c)),
  )


# The reference configs: STAGE1..STAGE4 of HRNet-Image-Classification's
# experiments/cls_hrnet_*.yaml (the same in the segmentation and pose repos, and
# timm's `cfg_cls`). Fields: modules, branches, block, blocks and planes per branch.
STAGES = {
  'w18_small_v1': (
    StageConfig(1, 1, 'bottleneck', (1,), (32,)),
    StageConfig(1, 2, 'basic', (2, 2), (16, 32)),
    StageConfig(1, 3, 'basic', (2, 2, 2), (16, 32, 64)),
    StageConfig(1, 4, 'basic', (2, 2, 2, 2), (16, 32, 64, 128)),
  ),
  'w18_small_v2': (
    StageConfig(1, 1, 'bottleneck', (2,), (64,)),
    StageConfig(1, 2, 'basic', (2, 2), (18, 36)),
    StageConfig(3, 3, 'basic', (2, 2, 2), (18, 36, 72)),
    StageConfig(2, 4, 'basic', (2, 2, 2, 2), (18, 36, 72, 144)),
  ),
  **{f'w{c}': _wide(c) for c in (18, 30, 32, 40, 44, 48, 64)},
}

# cls_hrnet.init_weights: He-normal with fan-out (models/initializers.py).
conv_init_classification = he_normal_fan_out
# seg_hrnet.init_weights and pose_hrnet.init_weights: normal(std=0.001).
conv_init_dense = nn.initializers.normal(0.001)


def check_stages(stages: Sequence[StageConfig]) -> None:
  """Raises ValueError unless `stages` is four stages of 1, 2, 3 and 4 branches."""
  if len(stages) != 4:
    raise ValueError(f'HRNet needs 4 stages, got {len(stages)}')
  for s, cfg in enumerate(stages, start=1):
    sizes = {cfg.num_branches, len(cfg.num_blocks), len(cfg.num_channels)}
    if sizes != {s} or cfg.block not in BLOCKS:
      raise ValueError(
        f'stage {s} must have {s} branches, one num_blocks and '
        f'num_channels entry each, block in {tuple(BLOCKS)}: got {cfg}'
      )


class HRNetBackbone(nn.Module):
  """Stem, stage 1 and stages 2-4 with their transitions; returns named features."""

  stages: Sequence[StageConfig]
  conv: Any
  norm: Any
  stem_width: int = 64
  upsample: str = 'nearest'  # in the fusions: 'nearest' | 'bilinear'
  align_corners: bool = False
  multi_scale_output: bool = True  # False: the last module outputs stream 0 only

  @nn.compact
  def __call__(self, x) -> dict[str, Any]:
    check_stages(self.stages)
    feats = {}
    for k in (1, 2):  # two 3x3 stride-2 convs: 1/4 resolution
      x = self.conv(self.stem_width, (3, 3), 2, padding=1, name=f'conv{k}')(x)
      x = nn.relu(self.norm(name=f'bn{k}')(x))
    feats['stem'] = x
    stage1 = self.stages[0]
    y = Branch(
      stage1.block,
      stage1.num_blocks[0],
      stage1.num_channels[0],
      self.conv,
      self.norm,
      name='layer1',
    )(x)
    ys = feats['layer1'] = [y]
    for s, cfg in enumerate(self.stages[1:], start=2):
      channels = tuple(c * BLOCKS[cfg.block].expansion for c in cfg.num_channels)
      xs = Transition(channels, self.conv, self.norm, name=f'transition{s - 1}')(ys)
      xs = Stage(
        cfg.num_modules,
        cfg.block,
        cfg.num_blocks,
        cfg.num_channels,
        self.conv,
        self.norm,
        self.upsample,
        self.align_corners,
        self.multi_scale_output or s < len(self.stages),
        name=f'stage{s}',
      )(xs)
      ys = feats[f'stage{s}'] = xs
    return feats


class ClassificationHead(nn.Module):
  """HRNet-C's incremental head: per-stream Bottlenecks, merged by stride-2 convs from
  high to low resolution, a 1x1 conv, global average pooling and a linear layer."""

  num_classes: int
  conv: Any
  norm: Any
  head_planes: Sequence[int] = (32, 64, 128, 256)  # x4: 128, 256, 512, 1024 channels
  num_features: int = 2048
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, streams):
    y = None
    for i, x in enumerate(streams):
      x = Branch('bottleneck', 1, self.head_planes[i], self.conv, self.norm, name=f'incre_{i}')(x)
      if y is not None:
        y = ConvBNChain(
          (x.shape[-1],), 3, 2, self.conv, self.norm, use_bias=True, name=f'downsamp_{i - 1}'
        )(y)
      y = x if y is None else x + y
    y = ConvBNChain(
      (self.num_features,), 1, 1, self.conv, self.norm, use_bias=True, name='final_layer'
    )(y)
    y = jnp.mean(y, axis=(1, 2))
    return nn.Dense(
      self.num_classes,
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(y.shape[-1]),
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='classifier',
    )(y)


class SegmentationHead(nn.Module):
  """HRNetV2's head: every stream resized to stream 0 and concatenated, 1x1 conv + BN +
  ReLU, 1x1 classifier."""

  num_classes: int
  conv: Any
  norm: Any
  align_corners: bool = False

  @nn.compact
  def __call__(self, streams):
    size = streams[0].shape[1:3]
    x = jnp.concatenate(
      [streams[0]] + [resize_bilinear(s, size, self.align_corners) for s in streams[1:]], axis=-1
    )
    x = ConvBNChain((x.shape[-1],), 1, 1, self.conv, self.norm, use_bias=True, name='last_layer')(x)
    return self.conv(
      self.num_classes,
      (1, 1),
      use_bias=True,
      bias_init=torch_bias_init(x.shape[-1]),
      name='classifier',
    )(x)


class PoseHead(nn.Module):
  """SimpleBaseline-style head on stream 0: a 1x1 conv to one heatmap per joint."""

  num_joints: int
  conv: Any

  @nn.compact
  def __call__(self, streams):
    return self.conv(
      self.num_joints, (1, 1), use_bias=True, bias_init=nn.initializers.zeros, name='final_layer'
    )(streams[0])


class HRNet(nn.Module):
  """HRNet-C for ImageNet classification (`STAGES` variant + the incremental head)."""

  stages: Sequence[StageConfig]
  num_classes: int = 1000
  stem_width: int = 64  # 64 in every reference net; smaller for tests
  head_planes: Sequence[int] = (32, 64, 128, 256)
  num_features: int = 2048
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    conv, norm = conv_and_norm(train, conv_init_classification, self.dtype, self.param_dtype)
    feats = HRNetBackbone(self.stages, conv, norm, self.stem_width, name='backbone')(
      x.astype(self.dtype)
    )
    logits = ClassificationHead(
      self.num_classes,
      conv,
      norm,
      self.head_planes,
      self.num_features,
      self.dtype,
      self.param_dtype,
      name='head',
    )(feats['stage4'])
    feats['logits'] = logits.astype(jnp.float32)
    return feats if return_features else feats['logits']


class HRNetV2Seg(nn.Module):
  """HRNetV2 for semantic segmentation: per-pixel logits at 1/4 of the input size."""

  stages: Sequence[StageConfig]
  num_classes: int = 19
  align_corners: bool = False  # MODEL.ALIGN_CORNERS of the Cityscapes configs
  stem_width: int = 64
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    conv, norm = conv_and_norm(train, conv_init_dense, self.dtype, self.param_dtype)
    feats = HRNetBackbone(
      self.stages, conv, norm, self.stem_width, 'bilinear', self.align_corners, name='backbone'
    )(x.astype(self.dtype))
    logits = SegmentationHead(self.num_classes, conv, norm, self.align_corners, name='head')(
      feats['stage4']
    )
    feats['logits'] = logits.astype(jnp.float32)
    return feats if return_features else feats['logits']


class PoseHRNet(nn.Module):
  """HRNet for pose estimation: one heatmap per joint at 1/4 of the input size."""

  stages: Sequence[StageConfig]
  num_classes: int = 17  # joints (COCO)
  stem_width: int = 64
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    conv, norm = conv_and_norm(train, conv_init_dense, self.dtype, self.param_dtype)
    feats = HRNetBackbone(
      self.stages, conv, norm, self.stem_width, multi_scale_output=False, name='backbone'
    )(x.astype(self.dtype))
    heatmaps = PoseHead(self.num_classes, conv, name='head')(feats['stage4'])
    feats['logits'] = heatmaps.astype(jnp.float32)
    return feats if return_features else feats['logits']


MODELS = {
  # HRNet-C, ImageNet (HRNet-Image-Classification README; timm hrnet_w18_small is v1).
  **{f'hrnet_{v}': partial(HRNet, stages=STAGES[v]) for v in STAGES},
  # HRNetV2 segmentation (HRNet-Semantic-Segmentation, Cityscapes).
  **{
    f'hrnet_seg_{v}': partial(HRNetV2Seg, stages=STAGES[v])
    for v in ('w18_small_v1', 'w18_small_v2', 'w48')
  },
  # Pose (deep-high-resolution-net, COCO keypoints).
  **{f'hrnet_pose_{v}': partial(PoseHRNet, stages=STAGES[v]) for v in ('w32', 'w48')},
}
