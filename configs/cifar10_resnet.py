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

Rule: the schedule is in iterations at the paper's batch of 128; at batch B the steps,
warm-up and drops scale by 128/B and the peak learning rate by B/128
(`--config.batch_size=256`: 32k steps, drops at 16k and 24k, peak 0.2).

Differences from the paper:
- The paper subtracts the per-pixel mean image; here each channel is normalized by
  the training set's mean and standard deviation.
- The warm-up is a linear ramp up to 0.1 over the first 400 iterations, not a
  constant 0.01 until the training error is below 80%.
"""

import ml_collections

from configs import config_string, default, recipes

DEPTHS = ('20', '32', '44', '56', '110', '1202')
PLAIN = ('plain20', 'plain32', 'plain44', 'plain56', 'plain110')
VARIANTS = DEPTHS + tuple(d + '_b' for d in DEPTHS) + PLAIN
MODIFIERS = ('cifar100', 'val', 'smoke')

TRAIN_IMAGES, VAL_IMAGES = 50_000, 5_000
WARMUP_STEPS = 400  # ResNet-110's warm-up: "about 400 iterations"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `VARIANT[_b][,cifar100][,val][,smoke]`, e.g. '56', '110_b', 'plain20,val'.

  Returns:
    The ConfigDict ('56' when `arg` is empty).
  """
  parsed = config_string.parse(
    arg, 'cifar10_resnet.py', variants=VARIANTS, default='56', modifiers=MODIFIERS
  )
  config = default.get_config()

  # Data.
  config.dataset.name = 'cifar100' if 'cifar100' in parsed else 'cifar10'
  if 'val' in parsed:
    train_images = TRAIN_IMAGES - VAL_IMAGES
    config.dataset.train_split = f'train[:{train_images}]'
    config.dataset.eval_split = f'train[{train_images}:]'
  else:
    config.dataset.train_split = 'train'
    config.dataset.eval_split = 'test'
  config.input.image_size = 32
  config.dataset.num_classes = 100 if config.dataset.name == 'cifar100' else 10
  config.input.channels = 3
  recipes.normalize(config, config.dataset.name)
  config.input.crop_padding = 4
  config.input.random_flip = True
  config.input.feed = 'device_resident'

  # Model.
  depth = recipes.cifar_model(config, parsed.variant)

  # Optimizer and schedule: section 4.2, in iterations of 128 images.
  recipes.cifar_sgd(config)
  recipes.cifar_schedule(config, warmup_steps=WARMUP_STEPS if depth >= 110 else 0)

  # Eval and runtime.
  config.eval_batch_size = 256
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
