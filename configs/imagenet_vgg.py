"""VGG on ImageNet (ILSVRC-2012).

Simonyan and Zisserman 2014, "Very deep convolutional networks for large-scale image
recognition" (arXiv 1409.1556), configurations A-E of Table 1; the BatchNorm variants
are torchvision's.

  python main.py --config=configs/imagenet_vgg.py:16 --workdir=/tmp/vgg16

Config string `VARIANT[,jitter][,smoke]`; `jitter` trains with the scale jittering of
section 3.1 (S uniform in [256, 512]) and tests at Q = 384 instead of S = Q = 256;
`smoke` shrinks the run to 48x48 inputs, batch 8 and 4 steps on a slice of the data: it
checks that the pipeline runs, trains nothing.

Variants and expected results. Plain nets: the paper's Table 3, ILSVRC-2012
validation top-1 / top-5 error at a single test scale, training scale S=256:
  11      config A      29.6 / 10.4
  11_lrn  config A-LRN  29.7 / 10.5
  13      config B      28.7 /  9.9
  16_c    config C      28.1 /  9.4 (27.3 / 8.8 with scale jitter [256; 512])
  16      config D      27.0 /  8.8 (25.6 / 8.1 with scale jitter)
  19      config E      27.3 /  9.0 (25.5 / 8.0 with scale jitter)
BatchNorm nets (not in the paper): torchvision's V1 weights, validation top-1 / top-5
accuracy from one 224 crop: 11_bn 70.370 / 89.810, 13_bn 71.586 / 90.374,
16_bn 73.360 / 91.516, 19_bn 74.218 / 91.842.

Recipe of section 3.1 for the plain nets: SGD, batch 256, momentum 0.9, weight decay
5e-4, dropout 0.5 on fc6 and fc7, lr 1e-2 divided by 10 three times when the
validation accuracy stopped improving, 370K iterations (74 epochs). The drops are fixed
here at a quarter, half and three quarters of the run. The BatchNorm nets use the
recipe that produced torchvision's weights: lr 0.1, weight decay 1e-4 on every
parameter, x0.1 every 30 epochs, 90 epochs. Inputs are standardized per channel as
torchvision does (the paper subtracts only the mean RGB; its N(0, 0.01) initialization
tolerated 0-255 inputs, the He initialization used here expects unit scale).

Inputs (section 3.1): the image isotropically rescaled so its shorter side is S
(256, or uniform in [256, 512] with `jitter`), a random 224x224 crop and a random
horizontal flip, streamed from the host (input_pipeline/stream.py); testing on the
central 224 crop of the image rescaled to Q. The BatchNorm nets train on torchvision's
random resized crops (8%-100% of the area, aspect ratio 3/4-4/3) unless `jitter`.
Not expressed by this config: the RGB colour shift, and the paper's dense (fully
convolutional) and multi-crop testing, so the single central crop scores somewhat
below the table's figures.
"""

import types

import ml_collections

from configs import default
from train_lib.errors import UserError

# Config string -> (model name, whether it is a torchvision BatchNorm variant).
VARIANTS = types.MappingProxyType(
  {
    '11': ('vgg11', False),
    '11_lrn': ('vgg11_lrn', False),
    '13': ('vgg13', False),
    '16_c': ('vgg16_c', False),
    '16': ('vgg16', False),
    '19': ('vgg19', False),
    '11_bn': ('vgg11_bn', True),
    '13_bn': ('vgg13_bn', True),
    '16_bn': ('vgg16_bn', True),
    '19_bn': ('vgg19_bn', True),
  }
)
MODIFIERS = ('jitter', 'smoke')
# Section 3.1: training scale S, fixed or jittered; Table 3: test scale Q.
FIXED_S, JITTER_S = (256, 256), (256, 512)
FIXED_Q, JITTER_Q = 256, 384


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `VARIANT[,smoke]`, e.g. '16', '11_lrn', '19_bn,smoke'.

  Returns:
    The ConfigDict ('16' when `arg` is empty).
  """
  variant, *modifiers = (arg or '16').split(',')
  if variant not in VARIANTS or any(m not in MODIFIERS for m in modifiers):
    raise UserError(
      f"bad config string '{arg}' for imagenet_vgg.py: use VARIANT"
      f'[,jitter][,smoke] with VARIANT in {", ".join(VARIANTS)}'
    )
  model_name, batch_norm = VARIANTS[variant]
  base_lr = 0.1 if batch_norm else 1e-2  # for a batch of 256
  config = default.get_config()

  # Data.
  config.dataset.name = 'imagenet2012'
  config.dataset.train_split = 'train'
  config.dataset.eval_split = 'validation'
  config.dataset.num_classes = 1000
  config.input.channels = 3
  config.input.image_size = 224
  config.input.mean = (0.485, 0.456, 0.406)  # RGB, on the [0, 1] scale
  config.input.std = (0.229, 0.224, 0.225)
  config.input.feed = 'host'  # JPEGs of every size, rescaled and cropped on the host
  jitter = 'jitter' in modifiers
  if batch_norm and not jitter:  # torchvision's reference: Inception-style crops
    config.input.train_crop = 'random_resized'
  else:
    config.input.train_crop = 'scale_jitter'
    config.input.shorter_side_range = JITTER_S if jitter else FIXED_S
  config.input.crop_padding = 0
  config.input.random_flip = True
  config.input.eval_crop = 'center'
  config.input.eval_resize = JITTER_Q if jitter else FIXED_Q

  # Model.
  config.model.name = model_name
  config.model.dropout_rate = 0.5

  # Optimizer.
  config.batch_size = 256
  config.optimizer = 'sgd'
  config.learning_rate = base_lr * config.batch_size / 256
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 1e-4 if batch_norm else 5e-4
  # The paper's L2 penalty on the weights, as in the AlexNet recipe it follows;
  # torchvision's reference decays every parameter.
  config.weight_decay_mask = 'all' if batch_norm else 'kernels'

  # Schedule.
  config.num_epochs = 90.0 if batch_norm else 74.0
  config.warmup_epochs = 0.0
  config.lr_schedule = 'step'
  config.lr_decay = 0.1
  if batch_norm:  # torchvision: --lr-step-size 30 --lr-gamma 0.1
    config.lr_boundaries_epochs = (30.0, 60.0)
  else:  # three drops, at fixed points instead of the paper's plateaus
    config.lr_boundaries_epochs = tuple(config.num_epochs * i / 4 for i in (1, 2, 3))

  # Eval.
  config.eval_batch_size = 256
  config.eval_every_steps = -1  # once per epoch

  # Runtime.
  config.seed = 0
  config.half_precision = False
  config.log_every_steps = 100
  config.checkpoint_every_steps = -1

  if 'smoke' in modifiers:
    default.shrink_for_smoke_test(config, image_size=48)
    config.input.shorter_side_range = (55, 110) if jitter else (55, 55)  # 48 * S / 224
    config.input.eval_resize = 55
  return config
