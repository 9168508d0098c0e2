"""GoogLeNet, i.e. Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions",
arXiv 1409.4842, Table 1, Fig. 2b and Fig. 3), in two variants over one module.

`googlenet` matches torchvision's `googlenet` (6,624,904 parameters; 13,004,888 with the
auxiliary classifiers), layer for layer, so its ported weights load one to one:

- every conv is BasicConv2d: conv without bias, BatchNorm (eps 1e-3), ReLU;
- the "5x5" branch uses a 3x3 kernel (a known torchvision bug, pytorch/vision#906, kept
  because the released weights have that shape);
- max pools round up (ceil mode), and maxpool4 (before 5a) is 2x2/2;
- dropout 0.2 before the classifier; aux heads pool adaptively to 4x4;
- `transform_input=True` re-normalises an input that was normalised with `input_mean`
  and `input_std` (torchvision's ImageNet statistics by default, the constants its
  `transform_input` hard-codes) into (x - 0.5) / 0.5 per channel, the scale the ported
  weights expect (torchvision sets it when it loads them; leave it off when training
  from scratch). A config passes its own `input.mean` and `input.std` here.

`googlenet_paper` follows the paper (6,998,552 parameters; 13,378,280 with aux heads):
5x5 kernels, convs with bias and no normalisation, ReLU, local response normalisation
after pool1 and after conv3 (Fig. 3), dropout 0.4, aux heads with the paper's 5x5/3
average pool (section 5; 14x14 -> 4x4 at 224 input). Max pools are 3x3/2 everywhere,
maxpool4 included (Table 1: 14x14 -> 7x7); like Caffe they round up. Table 1's final
7x7/1 average pool is a global average pool, as in torchvision. The paper gives no
initialisation (it trained with DistBelief); we use the BVLC Caffe replication's
(models/bvlc_googlenet): "xavier" weights U(+-sqrt(3 / fan_in)), biases 0.2, classifier
biases 0; and its LRN (size 5, alpha 1e-4, beta 0.75, k 1).

Auxiliary classifiers (section 5) sit on the outputs of 4a and 4d. With
`aux_logits=True` they are built at init; in training they run and their float32 logits
are sown as `aux_logits/aux1/logits` and `aux_logits/aux2/logits` (apply with
`mutable=['batch_stats', 'aux_logits']`; each leaf is a 1-tuple, flax's sow format). The
heads keep torchvision's module names aux1/aux2, which is why the logits sit one level
down. The loss adds 0.3 x the cross-entropy of each (the paper's weight). The module
always returns the main logits only; in eval the aux heads do not run.
"""

import functools
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax.numpy as jnp

from models.batch_norm import torch_batch_norm
from models.conv import Conv
from models.layers import local_response_norm
from models.pooling import adaptive_avg_pool, max_pool


class InceptionConfig(NamedTuple):
  """One Inception row of Table 1: input channels and the widths of the four branches."""

  name: str
  in_channels: int
  ch1x1: int
  ch3x3red: int
  ch3x3: int
  ch5x5red: int
  ch5x5: int
  pool_proj: int


# Table 1 of the paper ("#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj").
INCEPTION = (
  InceptionConfig('3a', 192, 64, 96, 128, 16, 32, 32),
  InceptionConfig('3b', 256, 128, 128, 192, 32, 96, 64),
  InceptionConfig('4a', 480, 192, 96, 208, 16, 48, 64),
  InceptionConfig('4b', 512, 160, 112, 224, 24, 64, 64),
  InceptionConfig('4c', 512, 128, 128, 256, 24, 64, 64),
  InceptionConfig('4d', 512, 112, 144, 288, 32, 64, 64),
  InceptionConfig('4e', 528, 256, 160, 320, 32, 128, 128),
  InceptionConfig('5a', 832, 256, 160, 320, 32, 128, 128),
  InceptionConfig('5b', 832, 384, 192, 384, 48, 128, 128),
)
# The auxiliary classifiers and the module whose output each one reads (section 5).
AUX_AFTER = (('4a', 'aux1'), ('4d', 'aux2'))
# Local response normalisation of the BVLC Caffe replication (the paper gives none).
CAFFE_LRN = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)


class Init(NamedTuple):
  """Initialisers: conv and fc kernels, their biases, and the classifiers' biases."""

  kernel: Callable
  bias: Callable
  classifier_bias: Callable


INITS = {
  # torchvision: trunc_normal_(std=0.01, a=-2, b=2) on every conv and fc weight. The
  # bounds are absolute, i.e. 200 std, so the truncation never binds and this is a
  # plain normal. torchvision leaves fc biases at PyTorch's default; we use zeros.
  'torchvision': Init(nn.initializers.normal(0.01), nn.initializers.zeros, nn.initializers.zeros),
  # BVLC Caffe replication: "xavier" = U(+-sqrt(3 / fan_in)), biases 0.2, classifiers 0.
  'caffe': Init(
    nn.initializers.lecun_uniform(), nn.initializers.constant(0.2), nn.initializers.zeros
  ),
}


def torchvision_transform_input(x, mean: Sequence[float], std: Sequence[float]):
  """Maps (x - mean) / std (per channel, NHWC) to (x - 0.5) / 0.5, as torchvision's
  GoogLeNet does with `transform_input=True`.

  Args:
    x: images normalised with `mean` and `std` (RGB, on the [0, 1] scale).
    mean, std: that normalisation, one value per channel.

  Returns:
    The same images on the scale torchvision's ported GoogLeNet weights expect.
  """
  std = jnp.asarray(std, x.dtype)
  mean = jnp.asarray(mean, x.dtype)
  return x * (std / 0.5) + (mean - 0.5) / 0.5


class BasicConv2d(nn.Module):
  """Conv -> BatchNorm -> ReLU (torchvision), or conv with bias -> ReLU (the paper)."""

  features: int
  kernel_size: int
  stride: int = 1
  batch_norm: bool = True
  init_scheme: str = 'torchvision'  # a key of INITS
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    init = INITS[self.init_scheme]
    k = self.kernel_size
    x = Conv(
      self.features,
      (k, k),
      strides=self.stride,
      padding=k // 2,
      use_bias=not self.batch_norm,
      kernel_init=init.kernel,
      bias_init=init.bias,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='conv',
    )(x)
    if self.batch_norm:
      # torchvision's BasicConv2d sets eps 1e-3 (PyTorch's default elsewhere).
      norm = torch_batch_norm(train, epsilon=1e-3, dtype=self.dtype, param_dtype=self.param_dtype)
      x = norm(name='bn')(x)
    return nn.relu(x)


class Inception(nn.Module):
  """Inception module (Fig. 2b): 1x1 | 1x1-3x3 | 1x1-5x5 | maxpool-1x1, concatenated."""

  cfg: InceptionConfig
  branch3_kernel: int = 3  # the "5x5" branch: 3 in torchvision, 5 in the paper
  batch_norm: bool = True
  init_scheme: str = 'torchvision'  # a key of INITS
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    c = self.cfg
    if x.shape[-1] != c.in_channels:
      raise ValueError(
        f'inception{c.name} expects {c.in_channels} input channels (Table 1), got {x.shape[-1]}'
      )
    conv = functools.partial(
      BasicConv2d,
      batch_norm=self.batch_norm,
      init_scheme=self.init_scheme,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
    )
    b1 = conv(c.ch1x1, 1, name='branch1')(x, train=train)
    b2 = conv(c.ch3x3red, 1, name='branch2_0')(x, train=train)
    b2 = conv(c.ch3x3, 3, name='branch2_1')(b2, train=train)
    b3 = conv(c.ch5x5red, 1, name='branch3_0')(x, train=train)
    b3 = conv(c.ch5x5, self.branch3_kernel, name='branch3_1')(b3, train=train)
    # Stride 1 with padding 1 keeps the size; ceil mode only mirrors torchvision.
    b4 = max_pool(x, 3, 1, padding=1, ceil_mode=True)
    b4 = conv(c.pool_proj, 1, name='branch4_1')(b4, train=train)
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class InceptionAux(nn.Module):
  """Auxiliary classifier (section 5): pool to 4x4, 1x1 conv 128, fc 1024, dropout, fc."""

  num_classes: int
  pool: str = 'adaptive'  # 'adaptive' (torchvision) | 'avg5s3' (the paper's 5x5/3)
  dropout_rate: float = 0.7
  batch_norm: bool = True
  init_scheme: str = 'torchvision'  # a key of INITS
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    init = INITS[self.init_scheme]
    if self.pool == 'adaptive':
      x = adaptive_avg_pool(x, (4, 4))
    elif self.pool == 'avg5s3':
      if min(x.shape[1:3]) < 5:
        raise ValueError(
          f'the 5x5/3 aux pool needs >= 5x5 maps, got {x.shape[1:3]} '
          '(inputs of about 80x80 or more)'
        )
      x = nn.avg_pool(x, (5, 5), strides=(3, 3))
    else:
      raise ValueError(f"aux pool must be 'adaptive' or 'avg5s3', got {self.pool!r}")
    x = BasicConv2d(
      128,
      1,
      batch_norm=self.batch_norm,
      init_scheme=self.init_scheme,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='conv',
    )(x, train=train)
    # Flatten in PyTorch's (C, H, W) order, so torchvision's and Caffe's fc1 weights
    # load with a plain transpose.
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape((x.shape[0], -1))
    dense = functools.partial(
      nn.Dense, kernel_init=init.kernel, dtype=self.dtype, param_dtype=self.param_dtype
    )
    x = nn.relu(dense(1024, bias_init=init.bias, name='fc1')(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = dense(self.num_classes, bias_init=init.classifier_bias, name='fc2')(x)
    x = x.astype(jnp.float32)
    if not self.is_initializing():
      # Collection 'aux_logits', path aux1/logits (or aux2/logits): for the loss.
      self.sow('aux_logits', 'logits', x)
    return x


class GoogLeNet(nn.Module):
  """GoogLeNet (Table 1); defaults are torchvision's, `googlenet_paper` the paper's."""

  num_classes: int = 1000
  aux_logits: bool = False  # build the two auxiliary classifiers (section 5)
  transform_input: bool = False  # for torchvision's ported weights only
  # The normalisation `transform_input` undoes; torchvision's ImageNet statistics.
  input_mean: Sequence[float] = (0.485, 0.456, 0.406)
  input_std: Sequence[float] = (0.229, 0.224, 0.225)
  batch_norm: bool = True  # False: convs with bias and no normalisation (the paper)
  branch3_kernel: int = 3  # kernel of the "5x5" branch: 5 in the paper
  maxpool4_window: int = 2  # 3 in the paper (Table 1), stride 2 either way
  lrn: bool = False  # LRN after maxpool1 and after conv3 (Fig. 3)
  dropout_rate: float = 0.2  # before the classifier: 0.4 in the paper
  aux_pool: str = 'adaptive'  # 'adaptive' (to 4x4) or 'avg5s3' (the paper's 5x5/3)
  init_scheme: str = 'torchvision'  # a key of INITS
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    init = INITS[self.init_scheme]
    common = dict(
      batch_norm=self.batch_norm,
      init_scheme=self.init_scheme,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
    )
    conv = functools.partial(BasicConv2d, **common)
    if self.transform_input:
      x = torchvision_transform_input(x.astype(jnp.float32), self.input_mean, self.input_std)
    x = x.astype(self.dtype)

    # Stem (Table 1 rows 1-4, Fig. 3): 224 -> 112 -> 56 -> 28.
    x = conv(64, 7, stride=2, name='conv1')(x, train=train)
    x = max_pool(x, 3, 2, ceil_mode=True)  # maxpool1
    if self.lrn:
      x = local_response_norm(x, **CAFFE_LRN)
    x = conv(64, 1, name='conv2')(x, train=train)
    x = conv(192, 3, name='conv3')(x, train=train)
    if self.lrn:
      x = local_response_norm(x, **CAFFE_LRN)
    x = max_pool(x, 3, 2, ceil_mode=True)  # maxpool2

    aux_after = dict(AUX_AFTER)
    # The aux heads run in training, and at init so that their parameters exist.
    run_aux = self.aux_logits and (train or self.is_initializing())
    for cfg in INCEPTION:
      if cfg.name == '4a':
        x = max_pool(x, 3, 2, ceil_mode=True)  # maxpool3: 28 -> 14
      elif cfg.name == '5a':  # maxpool4: 14 -> 7
        x = max_pool(x, self.maxpool4_window, 2, ceil_mode=True)
      x = Inception(cfg, self.branch3_kernel, name=f'inception{cfg.name}', **common)(x, train=train)
      if run_aux and cfg.name in aux_after:
        InceptionAux(self.num_classes, pool=self.aux_pool, name=aux_after[cfg.name], **common)(
          x, train=train
        )

    x = jnp.mean(x, axis=(1, 2))  # Table 1's 7x7/1 average pool, for any input size
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(
      self.num_classes,
      kernel_init=init.kernel,
      bias_init=init.classifier_bias,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='fc',
    )(x)
    return x.astype(jnp.float32)


MODELS = {
  'googlenet': GoogLeNet,
  'googlenet_paper': functools.partial(
    GoogLeNet,
    batch_norm=False,
    branch3_kernel=5,
    maxpool4_window=3,
    lrn=True,
    dropout_rate=0.4,
    aux_pool='avg5s3',
    init_scheme='caffe',
  ),
}
