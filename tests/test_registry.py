"""Every registered model, at a tiny size: abstract init, output shape and a finite
gradient that reaches every parameter; and the registry's errors.

Parametrised over `sorted(registry.MODELS)`, so a new family is covered as soon as it is
registered. Each model is shrunk through the fields it has (`TINY_FIELDS`: widths,
fully connected sizes, HRNet's stage table) and fed the smallest input its architecture
takes (`INPUT_SIZE`, by class; 32 for a class not listed there). Variants that differ
from another registered variant only in `depth` run the program of the shallowest one
(e.g. cifar_resnet1202 runs cifar_resnet20's, resnet152 resnet18's, resnet152_v1
resnet50_v1's; `SAME_PROGRAM` lists those whose depth or width is spelled otherwise,
VGG's configurations and U^2-Net): every layer kind is compiled once, and the full-size shapes and
parameter counts of every depth are checked elsewhere (tests/test_resnet.py etc., by
`jax.eval_shape`). Likewise every HRNet variant shrinks to one tiny stage table, so the
classification, segmentation and pose heads compile once each. Fixed-width families
(LeNet, AlexNet, VGG, GoogLeNet) run at full width on their smallest input.

Cost: one compiled init + gradient per distinct tiny model, with XLA's cheapest
optimisation level (the same program, compiled faster).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from helpers import fast_compile_options

from models import registry
from models.hrnet import StageConfig

MODELS = registry.MODELS
NUM_CLASSES = 3
BATCH = 2

# HRNet's structure (a Bottleneck stage, 2-4 streams, every fusion path) at tiny widths.
TINY_STAGES = (
  StageConfig(1, 1, 'bottleneck', (1,), (2,)),
  StageConfig(1, 2, 'basic', (1, 1), (2, 4)),
  StageConfig(1, 3, 'basic', (1, 1, 1), (2, 4, 4)),
  StageConfig(1, 4, 'basic', (1, 1, 1, 1), (2, 4, 4, 4)),
)
# Applied to every model that has the field.
TINY_FIELDS = dict(
  width=2,  # ResNets
  base_width=2,  # U-Net, DeconvNet
  fc_features=8,  # AlexNet, VGG, DeconvNet
  fc_kernel=1,  # DeconvNet: fc6 on 1x1 pool5 maps
  stem_width=4,  # HRNet
  stages=TINY_STAGES,
  head_planes=(1, 1, 1, 1),
  num_features=4,
)
# The smallest input side each architecture takes (class name -> side).
INPUT_SIZE = {
  'LeNet5': 32,  # C5's 5x5 reaches 1x1
  'LeNet5Modern': 32,
  'AlexNet': 63,  # conv5's maps are 1x1 after the third pool
  'AlexNetOriginal': 67,
  'VGG': 32,  # five 2x2 pools
  'GoogLeNet': 32,
  'ResNet': 32,  # stride 32
  'CifarResNet': 8,
  'HRNet': 32,  # nearest fusion: sides multiple of 32
  'HRNetV2Seg': 32,
  'PoseHRNet': 32,
  'UNet': 16,  # four pools (same padding)
  'DeconvNet': 32,  # five pools
  'U2Net': 16,
}
VALID_UNET_SIZE = 188  # the paper's U-Net: the smallest valid input (388 out at 572)


def _class_and_keywords(name):
  ctor = MODELS[name]
  return getattr(ctor, 'func', ctor), dict(getattr(ctor, 'keywords', {}))


# Variants whose difference is depth (or width) under another field's name.
SAME_PROGRAM = {
  **{f'vgg{d}': 'vgg11' for d in (13, 16, 19)},  # configurations A, B, D, E of Table 1
  **{f'vgg{d}_bn': 'vgg11_bn' for d in (13, 16, 19)},
  'u2net': 'u2netp',  # the same RSU stages at other widths
}


def representative(name: str) -> str:
  """The shallowest registered variant that differs from `name` only in `depth`."""
  if name in SAME_PROGRAM:
    return SAME_PROGRAM[name]
  cls, keywords = _class_and_keywords(name)
  if 'depth' not in keywords:
    return name
  others = {k: v for k, v in keywords.items() if k != 'depth'}
  same = []
  for other in MODELS:
    c, kw = _class_and_keywords(other)
    if c is cls and 'depth' in kw and {k: v for k, v in kw.items() if k != 'depth'} == others:
      same.append((kw['depth'], other))
  return min(same)[1]


def tiny(name: str):
  """(the tiny model that stands for `name`, its input side)."""
  name = representative(name)
  cls, _ = _class_and_keywords(name)
  fields = {f.name for f in dataclasses.fields(cls)}
  model = MODELS[name](
    num_classes=NUM_CLASSES, **{k: v for k, v in TINY_FIELDS.items() if k in fields}
  )
  size = INPUT_SIZE.get(cls.__name__, 32)
  if getattr(model, 'padding', None) == 'valid':
    size = VALID_UNET_SIZE
  return model, size


# Parameters that no loss reaches by design: LeNet-5's RBF prototypes (the paper's
# fixed codes, behind a stop_gradient unless `train_prototypes`).
FROZEN = ('prototypes',)


def _rngs():
  return {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


def random_variables(abstract):
  """Random weights and BatchNorm statistics of `abstract`'s shapes, drawn on the host.

  Drawn with numpy on the host (cheaper than compiling `init`); nonzero biases keep tiny
  ReLU layers alive. Also tests/test_hrnet.py's.
  """
  rng = np.random.default_rng(0)

  def draw(path, a):
    name = path[-1].key
    if name == 'kernel':  # He-normal with fan-in
      return rng.standard_normal(a.shape, np.float32) * np.sqrt(2 / np.prod(a.shape[:-1]))
    if name in ('scale', 'var'):
      return rng.uniform(0.5, 1.5, a.shape).astype(np.float32)
    return rng.normal(0.0, 0.1, a.shape).astype(a.dtype)  # biases, means, prototypes ...

  return jax.tree_util.tree_map_with_path(draw, abstract)


@functools.cache
def init_and_grad(model, size):
  """Abstract variables (`jax.eval_shape` of init), and the output and gradient of a
  training-mode loss at random variables (one compiled program)."""
  x = np.random.default_rng(1).normal(size=(BATCH, size, size, 3)).astype(np.float32)
  abstract = jax.eval_shape(lambda: model.init(_rngs(), x, train=False))

  def loss(params, variables, x):
    out, _ = model.apply(
      {**variables, 'params': params},
      x,
      train=True,
      rngs=_rngs(),
      mutable=['batch_stats', 'aux_logits'],
    )
    # A fixed random projection of the output: every output element gets a gradient.
    w = jax.random.normal(jax.random.key(2), out.shape)
    return jnp.sum(out * w) / out.size, out

  variables = random_variables(abstract)
  args = (variables['params'], variables, x)
  grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
  (_, out), grads = grad.lower(*args).compile(compiler_options=fast_compile_options())(*args)
  return abstract, out, grads


@pytest.mark.parametrize('name', sorted(MODELS))
def test_tiny_model_trains(name):
  model, size = tiny(name)
  abstract, out, grads = init_and_grad(model, size)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(abstract['params']))
  assert out.dtype == jnp.float32 and out.shape[0] == BATCH
  assert out.shape[-1] == NUM_CLASSES and out.ndim in (2, 4), out.shape
  assert jax.tree.structure(grads) == jax.tree.structure(abstract['params'])
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    g = np.asarray(g)
    assert np.all(np.isfinite(g)), f'{name}: non-finite gradient at {jax.tree_util.keystr(path)}'
    if path[-1].key not in FROZEN:
      assert np.any(g != 0), f'{name}: no gradient reaches {jax.tree_util.keystr(path)}'


def test_create_model_takes_the_compute_dtype():
  config = ml_collections.ConfigDict(dict(name='cifar_resnet20', width=2))
  model = registry.create_model(config, num_classes=NUM_CLASSES, dtype=jnp.bfloat16)
  assert model.dtype == jnp.bfloat16 and model.param_dtype == jnp.float32
  x = jnp.zeros((1, 8, 8, 3))
  out, variables = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x, train=False))
  assert out.dtype == jnp.float32
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(variables['params']))


def test_registry_errors_are_value_errors_that_list_the_names():
  with pytest.raises(ValueError, match="unknown model 'lenet6'.*lenet5_modern"):
    registry.create_model(ml_collections.ConfigDict(dict(name='lenet6')), num_classes=10)
  with pytest.raises(ValueError, match="model 'lenet5'.*widht"):
    registry.create_model(ml_collections.ConfigDict(dict(name='lenet5', widht=3)), num_classes=10)
