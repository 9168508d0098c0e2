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
here at a quarter, half and three quarters of the run (epochs 18.5, 37 and 55.5). The
BatchNorm nets use the recipe that produced torchvision's weights: lr 0.1, weight decay
1e-4 on every parameter, x0.1 every 30 epochs, 90 epochs. Rule, both recipes: peak lr =
base lr x batch / 256, schedule in epochs. Inputs are standardized per channel as
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

from configs import config_string, default, recipes

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
    arg: `VARIANT[,jitter][,smoke]`, e.g. '16', '11_lrn', '19_bn,smoke'.

  Returns:
    The ConfigDict ('16' when `arg` is empty).
  """
  parsed = config_string.parse(
    arg, 'imagenet_vgg.py', variants=tuple(VARIANTS), default='16', modifiers=MODIFIERS
  )
  model_name, batch_norm = VARIANTS[parsed.variant]
  jitter = 'jitter' in parsed
  config = default.get_config()

  # Data.
  recipes.imagenet_data(config)
  if jitter or not batch_norm:  # section 3.1; torchvision's BN nets: random resized crops
    config.input.train_crop = 'scale_jitter'
    config.input.shorter_side_range = JITTER_S if jitter else FIXED_S
  config.input.eval_resize = JITTER_Q if jitter else FIXED_Q

  # Model.
  config.model.name = model_name
  config.model.dropout_rate = 0.5

  # Optimizer and schedule.
  if batch_norm:  # torchvision: --lr 0.1 --lr-step-size 30 --lr-gamma 0.1
    recipes.torchvision_imagenet_recipe(config)
  else:  # section 3.1, AlexNet's; three drops, at fixed points instead of plateaus
    recipes.krizhevsky_recipe(config, batch_size=256, num_epochs=74.0)

  # Eval and runtime.
  config.eval_batch_size = 256
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config, image_size=48)
  return config
