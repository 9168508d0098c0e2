"""ResNets and plain nets on CIFAR-10 (He, Zhang, Ren and Sun 2015, arXiv 1512.03385,
section 4.2).

Models: a 3x3 convolution to 16 maps, three stages of n BasicBlocks with 16/32/64
filters at 32/16/8 pixels, global average pooling and a 10-way fully connected layer:
6n+2 weighted layers. Shortcuts are identities, zero-padded where the channels double
(option A, no parameters); the plain nets have none.

Recipe (section 4.2): SGD with momentum 0.9, weight decay 1e-4, batch 128, no dropout;
learning rate 0.1, divided by 10 at 32k and 48k iterations, training stops at 64k
iterations, a schedule the authors chose on a 45k/5k train/validation split. Training
augmentation: 4 pixels of padding on each side, a random 32x32 crop, a random
horizontal flip; testing on the single original image. ResNet-110 warms up at a
learning rate of 0.01 until the training error is below 80% (about 400 iterations)
before going to 0.1; this config warms up every net of depth 110 or more (ResNet-1202
and plain-110 too, our choice).

Config string `VARIANT[_b][,cifar100][,val][,smoke]`:
  VARIANT   20 | 32 | 44 | 56 | 110 | 1202 (ResNets) or plain20 | plain32 | plain44 |
            plain56 | plain110
  _b        projection shortcuts where the shape changes (option B) instead of A;
            ResNets only.
  cifar100  CIFAR-100 with its own mean and std, same recipe (the model gets 100
            outputs from the dataset).
  val       train on the first 45k training images and evaluate on the last 5k, the
            split on which the paper chose its schedule; otherwise all 50k / test.
            TFDS slices (`train[:45000]`, `train[45000:]`) select by position in the
            prepared files, so the split is the same on every read and machine.
  smoke     batch 8 and 4 steps on a slice of the data: checks that it runs.

Run:
  python main.py --config=configs/cifar10_resnet.py:56 --workdir=/tmp/cifar_resnet56

Expected CIFAR-10 test error, % (Table 6; params: option A):
  ResNet-20 8.75 (0.27M), -32 7.51 (0.46M), -44 7.17 (0.66M), -56 6.97 (0.85M),
  -110 6.43, 6.61+-0.16 over 5 runs (1.7M), -1202 7.93 (19.4M).
  The plain nets appear only as curves (Fig. 6): the deeper, the higher the error.

Feed: the training split lives on the devices as uint8 (150 MiB per device) and each
step gathers its batch and pads, crops, flips and normalizes it inside the compiled
step, so the host does nothing per step (input_pipeline/resident.py).

Differences from the paper, forced by the base config's fields:
- The paper subtracts the per-pixel mean image; here each channel is normalized by
  the training set's mean and standard deviation.
- The schedule is given in epochs; with steps_per_epoch = train_images // batch_size
  (390 for 50k images) `lr_boundaries_epochs` = 32k and 48k steps / steps_per_epoch.
  `num_train_steps` = 64000 is exact.
- The warm-up is the trainer's ramp up to 0.1 over about 400 steps (`warmup_epochs`),
  not a constant 0.01 until the training error is below 80%.
"""

import ml_collections

from configs import default
from train_lib.errors import UserError

DEPTHS = ('20', '32', '44', '56', '110', '1202')
PLAIN = ('plain20', 'plain32', 'plain44', 'plain56', 'plain110')
VARIANTS = DEPTHS + tuple(d + '_b' for d in DEPTHS) + PLAIN
MODIFIERS = ('cifar100', 'val', 'smoke')

# Per-channel statistics of the 50k training images, on the [0, 1] scale.
STATS = {
  'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
  'cifar100': ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

TRAIN_IMAGES, VAL_IMAGES = 50_000, 5_000
BOUNDARY_STEPS = (32_000, 48_000)
TOTAL_STEPS = 64_000
WARMUP_STEPS = 400  # ResNet-110's warm-up: "about 400 iterations"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `VARIANT[_b][,cifar100][,val][,smoke]`, e.g. '56', '110_b', 'plain20,val'.

  Returns:
    The ConfigDict ('56' when `arg` is empty).
  """
  variant, *modifiers = (arg or '56').split(',')
  if variant not in VARIANTS or any(m not in MODIFIERS for m in modifiers):
    raise UserError(
      f"bad config string '{arg}' for cifar10_resnet.py: use VARIANT[_b]"
      f'[,cifar100][,val][,smoke] with VARIANT in '
      f'{", ".join(DEPTHS + PLAIN)}'
    )
  plain, option_b = variant.startswith('plain'), variant.endswith('_b')
  depth = int(variant.removeprefix('plain').removesuffix('_b'))
  config = default.get_config()

  # Data.
  config.dataset.name = 'cifar100' if 'cifar100' in modifiers else 'cifar10'
  if 'val' in modifiers:
    train_images = TRAIN_IMAGES - VAL_IMAGES
    config.dataset.train_split = f'train[:{train_images}]'
    config.dataset.eval_split = f'train[{train_images}:]'
  else:
    train_images = TRAIN_IMAGES
    config.dataset.train_split = 'train'
    config.dataset.eval_split = 'test'
  config.input.image_size = 32
  config.dataset.num_classes = 100 if config.dataset.name == 'cifar100' else 10
  config.input.channels = 3
  config.input.mean, config.input.std = STATS[config.dataset.name]
  config.input.crop_padding = 4
  config.input.random_flip = True
  config.input.feed = 'device_resident'

  # Model.
  config.model.name = f'cifar_plain{depth}' if plain else f'cifar_resnet{depth}'
  config.model.shortcut = 'none' if plain else ('B' if option_b else 'A')
  config.model.zero_init_residual = False

  # Optimizer.
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 1e-4
  config.weight_decay_mask = 'all'  # Caffe's solver decays every parameter

  # Schedule: in iterations in the paper, converted to epochs of this training set.
  steps_per_epoch = train_images // config.batch_size
  config.num_train_steps = TOTAL_STEPS
  config.num_epochs = TOTAL_STEPS / steps_per_epoch
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = tuple(s / steps_per_epoch for s in BOUNDARY_STEPS)
  config.lr_decay = 0.1
  config.warmup_epochs = WARMUP_STEPS / steps_per_epoch if depth >= 110 else 0.0

  # Eval.
  config.eval_batch_size = 256
  config.eval_every_steps = -1  # once per epoch

  # Runtime.
  config.seed = 0
  config.half_precision = False
  config.log_every_steps = 100
  config.checkpoint_every_steps = -1

  if 'smoke' in modifiers:
    default.shrink_for_smoke_test(config)
  return config
