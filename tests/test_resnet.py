"""Tests for the ResNets: exact parameter counts, shortcuts, stride placement, zero
init, features, gradients, and the two config files."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fast_compile_options

from configs import cifar10_resnet, imagenet_resnet
from models import resnet
from train_lib import optim

MODELS = resnet.MODELS

# Compile-time options only (same program, same results): XLA's CPU compiler takes
# most of this file's time, and these make it 3-6x faster on the gradient tests.
fast_jit = functools.partial(
  jax.jit,
  compiler_options=fast_compile_options(),
)

# architectures.md section 1a ([TV], plain nets [CALC]) and 1b (CIFAR, option A).
EXPECTED_PARAMS = {
  'resnet18': 11_689_512,
  'resnet34': 21_797_672,
  'resnet50': 25_557_032,
  'resnet101': 44_549_160,
  'resnet152': 60_192_808,
  'resnet50_v1': 25_557_032,
  'resnet101_v1': 44_549_160,
  'resnet152_v1': 60_192_808,
  'plain18': 11_515_688,
  'plain34': 21_623_848,
  'cifar_resnet20': 269_722,
  'cifar_resnet32': 464_154,
  'cifar_resnet44': 658_586,
  'cifar_resnet56': 853_018,
  'cifar_resnet110': 1_727_962,
  'cifar_resnet1202': 19_421_274,
  'cifar_plain20': 269_722,
  'cifar_plain32': 464_154,
  'cifar_plain44': 658_586,
  'cifar_plain56': 853_018,
  'cifar_plain110': 1_727_962,
}
# Section 1b, option B (projection shortcuts where the shape changes).
CIFAR_OPTION_B = {
  20: 272_474,
  32: 466_906,
  44: 661_338,
  56: 855_770,
  110: 1_730_714,
  1202: 19_424_026,
}


def is_cifar(name):
  return name.startswith('cifar')


def count_params(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def abstract(name, num_classes=None, size=None, **kwargs):
  """(params count, abstract logits, abstract variables) for a batch of 2 at `size`."""
  num_classes = num_classes or (10 if is_cifar(name) else 1000)
  size = size or (32 if is_cifar(name) else 224)
  return _abstract(MODELS[name](num_classes=num_classes, **kwargs), size)


@functools.lru_cache(maxsize=None)
def _abstract(model, size):
  # Modules are hashable dataclasses: equal fields share one trace (ResNet-1202 takes
  # seconds to trace, and the config tests build the same models again).
  x = np.zeros((2, size, size, 3), np.float32)
  out, variables = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x, train=False))
  return count_params(variables['params']), out, variables


def test_every_model_has_an_expected_count():
  assert set(MODELS) == set(EXPECTED_PARAMS)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_param_count_and_output_shape(name):
  count, out, variables = abstract(name)
  assert count == EXPECTED_PARAMS[name]
  assert out.shape == (2, 10 if is_cifar(name) else 1000) and out.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))


@pytest.mark.parametrize('depth', sorted(CIFAR_OPTION_B))
def test_cifar_option_b_count(depth):
  assert abstract(f'cifar_resnet{depth}', shortcut='B')[0] == CIFAR_OPTION_B[depth]


def block_names(params):
  return {k: set(v) for k, v in params.items() if k.startswith('layer')}


def test_option_a_has_no_parameters():
  _, _, a = abstract('cifar_resnet20')
  _, _, b = abstract('cifar_resnet20', shortcut='B')
  assert not any('downsample_conv' in v for v in block_names(a['params']).values())
  # B projects exactly where the shape changes: the first block of stages 2 and 3.
  projected = {k for k, v in block_names(b['params']).items() if 'downsample_conv' in v}
  assert projected == {'layer2_0', 'layer3_0'}
  assert b['params']['layer2_0']['downsample_conv']['kernel'].shape == (1, 1, 16, 32)


def test_option_a_shortcut_is_subsampled_zero_padded_identity():
  # With a zero scale on bn2 the residual branch is exactly 0 at init, so the block's
  # output is relu(shortcut(x)); x >= 0 makes that the shortcut itself, and a plain
  # block (no shortcut) outputs zeros.
  x = np.abs(np.random.RandomState(0).randn(2, 8, 8, 16)).astype(np.float32)
  expected = np.pad(x[:, ::2, ::2, :], ((0, 0), (0, 0), (0, 0), (8, 8)))
  for shortcut, want in (('A', expected), ('none', np.zeros_like(expected))):
    conv, norm = resnet.conv_and_norm(train=False)
    block = resnet.BasicBlock(32, conv, norm, strides=2, shortcut=shortcut, zero_init_residual=True)
    y = fast_jit(lambda b=block: b.init_with_output(jax.random.key(1), x)[0])()
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


def test_plain_imagenet_is_resnet_minus_projections():
  # architectures.md: each plain net is its ResNet minus 3 projections (173,824).
  for depth in (18, 34):
    assert EXPECTED_PARAMS[f'resnet{depth}'] - EXPECTED_PARAMS[f'plain{depth}'] == 173_824
    names = block_names(abstract(f'plain{depth}')[2]['params'])
    assert not any('downsample_conv' in v for v in names.values())


def test_v1_puts_the_stride_on_the_first_1x1():
  x = np.zeros((1, 224, 224, 3), np.float32)
  shapes = {}
  for name in ('resnet50', 'resnet50_v1'):
    model = MODELS[name](num_classes=1000)
    _, variables = abstract(name)[1:]
    _, state = jax.eval_shape(
      lambda v, m=model: m.apply(
        v, x, train=False, capture_intermediates=True, mutable=['intermediates']
      ),
      variables,
    )
    inter = state['intermediates']['layer2_0']
    shapes[name] = [inter[c]['__call__'][0].shape[1:3] for c in ('conv1', 'conv2', 'conv3')]
    # Same kernels either way; only where the stride sits differs.
    assert variables['params']['layer2_0']['conv1']['kernel'].shape == (1, 1, 256, 128)
  assert shapes['resnet50'] == [(56, 56), (28, 28), (28, 28)]  # v1.5: on the 3x3
  assert shapes['resnet50_v1'] == [(28, 28), (28, 28), (28, 28)]  # v1: on the 1x1


class BlockInMode(nn.Module):
  """A stride-2 block (a key of resnet.BLOCKS) whose BatchNorms follow `train`."""

  block: str
  features: int
  fields: dict = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    block = resnet.BLOCKS[self.block]
    conv, norm = resnet.conv_and_norm(train)
    return block(self.features, conv, norm, strides=2, name='block', **(self.fields or {}))(x)


def init_scales(model, x):
  """The initial BN scales by path; jitted returning only them, so XLA drops the rest."""

  def scales():
    params = model.init(jax.random.key(0), x, train=False)['params']
    return {
      jax.tree_util.keystr(path[:-1]): v
      for path, v in jax.tree_util.tree_leaves_with_path(params)
      if path[-1].key == 'scale'
    }

  return fast_jit(scales)()


@pytest.mark.parametrize('block', ['basic', 'bottleneck'])
def test_zero_init_residual(block):
  x = np.ones((1, 8, 8, 16), np.float32)
  last = {'basic': "['block']['bn2']", 'bottleneck': "['block']['bn3']"}[block]
  for zero in (False, True):
    scales = init_scales(BlockInMode(block, 16, dict(zero_init_residual=zero)), x)
    assert len(scales) == {'basic': 3, 'bottleneck': 4}[block]  # with downsample_bn
    for name, scale in scales.items():
      np.testing.assert_array_equal(scale, 0.0 if zero and name == last else 1.0, name)


def test_zero_init_residual_reaches_every_block():
  model = MODELS['cifar_resnet20'](num_classes=10, zero_init_residual=True)
  scales = init_scales(model, np.zeros((1, 8, 8, 3), np.float32))
  zeros = {name for name, scale in scales.items() if not np.any(scale)}
  ones = {name for name, scale in scales.items() if np.all(scale == 1.0)}
  assert zeros == {f"['layer{i}_{j}']['bn2']" for i in (1, 2, 3) for j in range(3)}
  assert ones == set(scales) - zeros


def features(name, size):
  model = MODELS[name](num_classes=10 if is_cifar(name) else 1000)
  x = np.zeros((2, size, size, 3), np.float32)
  return jax.eval_shape(
    lambda v: model.apply(v, x, train=False, return_features=True), abstract(name)[2]
  )


def test_named_features():
  feats = features('resnet18', 224)
  assert {k: v.shape for k, v in feats.items()} == {
    'stem': (2, 56, 56, 64),
    'layer1': (2, 56, 56, 64),
    'layer2': (2, 28, 28, 128),
    'layer3': (2, 14, 14, 256),
    'layer4': (2, 7, 7, 512),
    'pre_logits': (2, 512),
    'logits': (2, 1000),
  }
  feats = features('cifar_resnet20', 32)
  assert [feats[k].shape[1:] for k in ('stem', 'layer1', 'layer2', 'layer3')] == [
    (32, 32, 16),
    (32, 32, 16),
    (16, 16, 32),
    (8, 8, 64),
  ]


@pytest.mark.parametrize('name', ['resnet18', 'cifar_resnet20'])
def test_custom_classes_and_bfloat16(name):
  _, out, variables = abstract(name, num_classes=17, dtype=jnp.bfloat16)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))
  assert out.shape == (2, 17) and out.dtype == jnp.float32


def check_forward_backward(model, x, num_classes):
  """One jitted init + training-mode loss and gradient: finite, and reaching every
  parameter; the batch statistics move."""
  labels = np.arange(x.shape[0]) % num_classes

  def init_and_grad():
    variables = model.init(jax.random.key(0), x, train=False)

    def loss_fn(params):
      logits, updates = model.apply(
        {**variables, 'params': params}, x, train=True, mutable=['batch_stats']
      )
      logp = jax.nn.log_softmax(logits.reshape(x.shape[0], -1))
      return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], 1)), (logits, updates)

    return jax.value_and_grad(loss_fn, has_aux=True)(variables['params']), variables

  ((loss, (logits, updates)), grads), variables = fast_jit(init_and_grad)()
  assert logits.dtype == jnp.float32 and np.isfinite(float(loss))
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    g = np.asarray(g)
    assert np.all(np.isfinite(g)), jax.tree_util.keystr(path)
    assert np.any(g != 0), f'no gradient reaches {jax.tree_util.keystr(path)}'
  new = jax.tree.leaves(updates['batch_stats'])
  old = jax.tree.leaves(variables['batch_stats'])
  assert all(not np.allclose(a, b) for a, b in zip(new, old))
  return logits


@pytest.mark.parametrize(
  'name,size,width',
  [
    ('resnet18', 32, 8),  # stem, max pool, BasicBlocks, projections (option B)
    ('cifar_resnet20', 8, 16),  # option A, full width
  ],
)
def test_forward_backward_tiny(name, size, width):
  model = MODELS[name](num_classes=5, width=width)
  x = np.random.RandomState(1).randn(2, size, size, 3).astype(np.float32)
  assert check_forward_backward(model, x, 5).shape == (2, 5)


def test_bottleneck_forward_backward():
  # A whole ResNet-50 takes minutes to compile on CPU; its Bottleneck is the new part.
  x = np.random.RandomState(1).randn(2, 8, 8, 16).astype(np.float32)
  assert check_forward_backward(BlockInMode('bottleneck', 8), x, 5).shape == (2, 4, 4, 32)


def test_unknown_shortcut_is_rejected():
  with pytest.raises(ValueError, match='shortcut'):
    abstract('cifar_resnet20', shortcut='D')


CONFIG_STRINGS = [(imagenet_resnet, v) for v in imagenet_resnet.VARIANTS + ('', '50_v1,smoke')] + [
  (cifar10_resnet, v)
  for v in cifar10_resnet.VARIANTS + ('', '20_b,cifar100', 'plain20,val', '32,cifar100,val,smoke')
]
NUM_CLASSES = {'imagenet2012': 1000, 'cifar10': 10, 'cifar100': 100}


def expected_count(name, shortcut, num_classes):
  count = EXPECTED_PARAMS[name]
  if shortcut == 'B' and is_cifar(name):
    count = CIFAR_OPTION_B[resnet.MODELS[name].keywords['depth']]
  if is_cifar(name):  # CIFAR-100: 64 weights and a bias for each of 90 more classes
    count += (num_classes - 10) * 65
  return count


@pytest.mark.parametrize(
  'module,arg', CONFIG_STRINGS, ids=[f'{m.__name__.split(".")[-1]}:{a}' for m, a in CONFIG_STRINGS]
)
def test_config_builds_model_with_exact_count(module, arg):
  config = module.get_config(arg)
  kwargs = dict(config.model.to_dict())
  name = kwargs.pop('name')
  assert name in MODELS
  num_classes = NUM_CLASSES[config.dataset.name]
  count, out, _ = abstract(name, num_classes=num_classes, size=config.input.image_size, **kwargs)
  assert count == expected_count(name, kwargs.get('shortcut'), num_classes)
  assert out.shape == (2, num_classes)
  assert config.lr_schedule == 'step' and config.momentum == 0.9
  assert config.weight_decay == 1e-4
  if 'smoke' not in arg:  # a smoke run stops after 4 steps, before any drop
    s = optim.resolve_schedule(config, 50_000 // config.batch_size)
    assert s.boundaries and all(0 < b < s.steps for b in s.boundaries)


@pytest.mark.parametrize('arg', ['56', '110,val'])
def test_cifar_schedule_is_the_papers_in_steps(arg):
  config = cifar10_resnet.get_config(arg)
  train_images = 45_000 if 'val' in arg else 50_000
  s = optim.resolve_schedule(config, train_images // config.batch_size)
  assert s.boundaries == (32_000, 48_000) and s.steps == 64_000
  assert s.warmup_steps == (400 if '110' in arg else 0)
  assert config.input.crop_padding == 4 and config.input.random_flip


def test_imagenet_recipe():
  config = imagenet_resnet.get_config('50_v1')
  assert config.model.name == 'resnet50' and not config.model.stride_on_3x3
  assert imagenet_resnet.get_config('50').model.stride_on_3x3
  assert config.learning_rate == 0.1 * config.batch_size / 256
  assert config.lr_boundaries_epochs == (30.0, 60.0) and config.num_epochs == 90.0


@pytest.mark.parametrize(
  'module,arg',
  [
    (imagenet_resnet, '20'),
    (imagenet_resnet, '50_b'),
    (imagenet_resnet, '50,fast'),
    (cifar10_resnet, '50'),
    (cifar10_resnet, 'plain20_b'),
    (cifar10_resnet, 'plain1202'),
    (cifar10_resnet, '56,fast'),
  ],
)
def test_config_rejects_bad_strings(module, arg):
  with pytest.raises(ValueError, match='bad config string'):
    module.get_config(arg)
