"""HRNet: exact parameter counts and GFLOPs of every reference variant, the shapes of
every stage and head, the fusion against timm's module, information exchange between
the streams, and a forward and backward pass of a reduced-width network.

References: ../shared/reference/architectures.md section 3 (the HRNet READMEs' Params
and GFLOPs = multiply-adds / 1024^3, reproduced exactly by an analytic count).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_compile_options

from configs import cityscapes_hrnet, coco_pose_hrnet, imagenet_hrnet
from models import hrnet, registry
from models.hrnet import StageConfig
from models.hrnet_blocks import HighResolutionModule
from tests.test_registry import random_variables
from train_lib.modes import costs, summary

# Variants counted from their initialised shapes (an input of 64x64 suffices: the
# parameters do not depend on it).
PARAMS = [
  ('hrnet_w18_small_v1', 1000, 13_187_464),
  ('hrnet_w18_small_v2', 1000, 15_597_464),
  ('hrnet_seg_w18_small_v2', 19, 3_939_579),
  ('hrnet_seg_w48', 19, 65_859_379),
  ('hrnet_pose_w32', 17, 28_536_113),
  ('hrnet_pose_w48', 17, 63_595_745),
]
# Summarised at the README's input: parameters and GFLOPs (MACs / 1024^3) together.
GFLOPS = [
  ('hrnet_w18', 21_299_004, 3.99),
  ('hrnet_w32', 41_232_680, 8.31),
  ('hrnet_w48', 77_469_864, 16.1),
]
# The other widths of the same network (README Params).
WIDE = {30: 37_712_220, 40: 57_557_160, 44: 67_064_984, 64: 128_059_944}

# A reduced-width HRNet: every structural feature (Bottleneck stage 1, 2-4 streams, new
# streams from stride-2 convs, every fusion path) at tiny widths, one block per branch.
TINY = (
  StageConfig(1, 1, 'bottleneck', (1,), (4,)),
  StageConfig(1, 2, 'basic', (1, 1), (4, 8)),
  StageConfig(1, 3, 'basic', (1, 1, 1), (4, 8, 16)),
  StageConfig(1, 4, 'basic', (1, 1, 1, 1), (4, 8, 16, 32)),
)
TINY_CLS = dict(stages=TINY, stem_width=8, head_planes=(2, 4, 8, 16), num_features=32)


# XLA:CPU compiles a conv net's backward pass slowly; lighter LLVM optimisation halves
# the compile time of these one-shot programs without changing what they compute.
FAST_COMPILE = fast_compile_options()


def _run_once(fn, *args):
  """`jax.jit(fn)(*args)`, compiled for one call with FAST_COMPILE."""
  return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)


def _count(tree) -> int:
  return sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(tree))


def _random_variables(module, *args, **kwargs):
  """Random weights and BN statistics for `module.init(key, *args, **kwargs)`'s shapes."""
  return random_variables(jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs)))


@pytest.mark.parametrize('name,num_classes,params', PARAMS)
def test_total_params(name, num_classes, params):
  model = registry.MODELS[name](num_classes=num_classes)
  variables = costs.abstract_variables(model, (1, 64, 64, 3))
  assert _count(variables['params']) == params


@functools.cache
def _imagenet_summary(variant: str) -> costs.Summary:
  return costs.summarize(registry.MODELS[variant](num_classes=1000), (1, 224, 224, 3))


@pytest.mark.parametrize('variant,params,gflops', GFLOPS)
def test_classification_params_and_gflops(variant, params, gflops):
  result = _imagenet_summary(variant)
  assert result.total_params == params
  assert abs(result.total_macs / 1024**3 - gflops) / gflops < 0.01


@pytest.mark.parametrize('width,params', sorted(WIDE.items()))
def test_other_widths_params(width, params):
  model = registry.MODELS[f'hrnet_w{width}'](num_classes=1000)
  variables = costs.abstract_variables(model, (1, 64, 64, 3))
  assert _count(variables['params']) == params


def test_summary_mode_non_square_config(capsys):
  """`--mode=summary` of a segmentation config at its 512x1024 input."""
  seg = summary.print_model_summary(cityscapes_hrnet.get_config('w18_small_v1'))
  assert seg.total_params == 1_540_819
  assert seg.layers[-1].output_shapes == ((1, 128, 256, 19),)  # 1/4 of 512x1024
  # The README's 31.1 GFLOPs are at 1024x2048, four times the pixels of the crop.
  assert abs(seg.total_macs * 4 / 1024**3 - 31.1) / 31.1 < 0.01
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert last == f'total_params={seg.total_params} total_macs={seg.total_macs}'


def test_configs():
  config = imagenet_hrnet.get_config('w48')
  assert config.model.name in registry.MODELS
  assert (config.learning_rate, config.nesterov, config.weight_decay) == (0.05, True, 1e-4)
  assert config.lr_boundaries_epochs == (30.0, 60.0, 90.0) and config.num_epochs == 100
  for module, arg in [(imagenet_hrnet, 'w19'), (cityscapes_hrnet, 'w32'), (coco_pose_hrnet, 'w18')]:
    with pytest.raises(ValueError, match='bad config string'):
      module.get_config(arg)


def test_stage_and_head_shapes():
  x = jax.ShapeDtypeStruct((2, 64, 96, 3), jnp.float32)
  shapes = lambda tree: jax.tree_util.tree_map(lambda a: a.shape, tree)  # noqa: E731

  def features(model):
    return shapes(
      jax.eval_shape(
        lambda x: model.init_with_output(jax.random.key(0), x, train=False, return_features=True)[
          0
        ],
        x,
      )
    )

  streams = lambda s: [(2, 16 >> i, 24 >> i, 4 << i) for i in range(s)]  # noqa: E731
  cls = features(hrnet.HRNet(num_classes=10, **TINY_CLS))
  assert cls['stem'] == (2, 16, 24, 8)
  assert cls['layer1'] == [(2, 16, 24, 16)]  # Bottleneck: 4 planes x 4
  for s in (2, 3, 4):
    assert cls[f'stage{s}'] == streams(s)
  assert cls['logits'] == (2, 10)
  seg = features(hrnet.HRNetV2Seg(stages=TINY, num_classes=19, stem_width=8))
  assert seg['stage4'] == streams(4)
  assert seg['logits'] == (2, 16, 24, 19)
  pose = features(hrnet.PoseHRNet(stages=TINY, num_classes=17, stem_width=8))
  assert pose['stage3'] == streams(3)
  assert pose['stage4'] == streams(1)  # the last module outputs stream 0 only
  assert pose['logits'] == (2, 16, 24, 17)


def test_module_matches_timm():
  """Branches and fusion equal timm's HighResolutionModule on the same weights."""
  torch = pytest.importorskip(
    'torch', reason='torch is not installed: the PyTorch reference tests run on Python 3.11 (CI)'
  )
  from timm.models import hrnet as timm_hrnet
  from timm.models.resnet import BasicBlock

  torch.manual_seed(0)
  channels = [4, 8, 16]
  ref = timm_hrnet.HighResolutionModule(
    3, BasicBlock, (1, 1, 1), list(channels), tuple(channels), 'SUM'
  ).eval()
  with torch.no_grad():
    for m in ref.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        for t in (m.weight, m.bias, m.running_mean):
          t.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 1.5)
  params, stats = {}, {}

  def put(tree, path, name, value):
    for p in path:
      tree = tree.setdefault(p, {})
    tree[name] = jnp.asarray(value.detach().numpy())

  for key, value in ref.state_dict().items():
    parts = key.split('.')
    if parts[0] == 'branches':  # branches.B.N.conv1.weight
      path = [f'branch_{parts[1]}', f'block_{parts[2]}', parts[3]]
    else:  # fuse_layers.I.J.[K.]{0,1}.weight
      i, j, *k, layer = parts[1:-1]
      path = [f'fuse_{i}_{j}', f'{("conv", "bn")[int(layer)]}_{k[0] if k else 0}']
    leaf = parts[-1]
    if leaf == 'weight' and value.ndim == 4:
      put(params, path, 'kernel', value.permute(2, 3, 1, 0))
    elif leaf in ('weight', 'bias'):
      put(params, path, 'scale' if leaf == 'weight' else 'bias', value)
    elif leaf in ('running_mean', 'running_var'):
      put(stats, path, leaf.removeprefix('running_'), value)

  conv, norm = hrnet.conv_and_norm(False, hrnet.conv_init_classification, jnp.float32, jnp.float32)
  ours = HighResolutionModule('basic', (1, 1, 1), tuple(channels), conv, norm)
  rng = np.random.default_rng(0)
  xs = [rng.standard_normal((2, 16 >> i, 12 >> i, c), np.float32) for i, c in enumerate(channels)]
  out = _run_once(ours.apply, {'params': params, 'batch_stats': stats}, xs)
  with torch.no_grad():
    expected = ref([torch.from_numpy(x.transpose(0, 3, 1, 2)) for x in xs])
  for y, e in zip(out, expected):
    np.testing.assert_allclose(y, e.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_fusion_carries_every_stream_to_every_other():
  """One pixel changed in any one input stream changes every output stream."""
  conv, norm = hrnet.conv_and_norm(False, hrnet.conv_init_classification, jnp.float32, jnp.float32)
  rng = np.random.default_rng(1)
  xs = [rng.standard_normal((1, 8 >> i, 8 >> i, 4 << i), np.float32) for i in range(3)]
  # Example 0 unchanged, example 1 + j with one pixel of stream j moved (BN is per
  # example in evaluation mode, so the examples do not interact).
  batch = [np.concatenate([x] + [x.copy() for _ in range(3)]) for x in xs]
  for j in range(3):
    batch[j][1 + j, 0, 0, :] += 10.0
  for upsample in ('nearest', 'bilinear'):
    module = HighResolutionModule('basic', (1, 1, 1), (4, 8, 16), conv, norm, upsample)
    variables = _random_variables(module, xs)
    out = _run_once(module.apply, variables, batch)
    for i in range(3):
      for j in range(3):
        assert not np.allclose(out[i][0], out[i][1 + j]), (upsample, j, i)


def test_input_pixel_reaches_every_stream_after_first_fusion():
  model = hrnet.HRNet(num_classes=10, **TINY_CLS)
  x = np.random.default_rng(1).standard_normal((1, 64, 64, 3), np.float32)
  x = np.concatenate([x, x])
  x[1, 40, 40, :] += 5.0  # two examples: BN is per example in evaluation mode
  variables = _random_variables(model, x, train=False)
  feats = _run_once(lambda v, x: model.apply(v, x, train=False, return_features=True), variables, x)
  for s in (2, 3, 4):
    for i, y in enumerate(feats[f'stage{s}']):
      assert not np.allclose(y[0], y[1]), (s, i)
  # Input pixel 40 lands on 10 at 1/4. Stream 0's own 3x3 convs after the stem (the
  # Bottleneck's, the transition's, the BasicBlock's two) spread it by at most 4, to
  # 6..14; only the fusion with stream 1 (1/8, wider kernels) carries it farther.
  y = feats['stage2'][0]
  changed = np.argwhere(np.any(y[0] != y[1], axis=-1))
  assert np.abs(changed - 10).max() > 4


def test_train_step_reduced_width():
  """A forward and backward pass: finite loss, a gradient for every parameter.

  The pose net: the smallest program over the whole backbone (XLA:CPU spends seconds
  compiling the backward pass of every conv).
  """
  model = hrnet.PoseHRNet(stages=TINY, num_classes=5, stem_width=8)
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 32, 32, 3), np.float32)
  target = rng.uniform(0.0, 1.0, (2, 8, 8, 5)).astype(np.float32)  # heatmaps
  variables = _random_variables(model, x, train=True)

  def step(params, batch_stats):
    def loss_fn(params):
      heatmaps, updates = model.apply(
        {'params': params, 'batch_stats': batch_stats}, x, train=True, mutable=['batch_stats']
      )
      loss = jnp.mean((heatmaps - target) ** 2)
      return loss, updates['batch_stats']

    return jax.value_and_grad(loss_fn, has_aux=True)(params)

  (loss, stats), grads = _run_once(step, variables['params'], variables['batch_stats'])
  assert np.isfinite(loss)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(g)) and np.any(g != 0), jax.tree_util.keystr(path)
  for new, old in zip(
    jax.tree_util.tree_leaves(stats), jax.tree_util.tree_leaves(variables['batch_stats'])
  ):
    assert not np.array_equal(new, old)  # training mode updates the running statistics
