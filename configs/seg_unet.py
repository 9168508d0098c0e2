"""U-Net (Ronneberger, Fischer and Brox 2015, arXiv 1505.04597), as published and with
same padding, segmenting the digit scenes.

Config string `VARIANT[,smoke]`:
  original  the paper's network (Fig. 1, models/unet.py `unet`): valid 3x3
            convolutions, 2x2 up-convolutions, crop-and-concatenate; a 572x572 tile
            gives a 388x388 map; 1 input channel, 2 classes: 31,030,658 parameters
            (167.3 GMACs per tile).
  same      same-padded convolutions with BatchNorm (milesial/Pytorch-UNet; output
            size = input size; `unet_same`, base width 64, four poolings, transposed-
            convolution up-sampling) on the 48x48 scenes with their 11 classes.
  smoke     batch 8 and 4 steps on a slice of the data.

  python main.py --config=configs/seg_unet.py:original --mode=summary
  python main.py --config=configs/seg_unet.py:same --workdir=/tmp/seg_unet_same

Recipe (section 3): SGD with a high momentum, 0.99, "such that a large number of the
previously seen training samples determine the update", and a batch of one tile, as
large as the GPU allowed; pixel-wise softmax cross-entropy; weights drawn from a
Gaussian with standard deviation sqrt(2 / N), N the incoming nodes of a neuron (the
model's initialisers). Overlap-tile input: the 388x388 output tile sees a 572x572 input
whose border (92 pixels a side) is the image mirrored (Fig. 2) here: `pad_to` 572 with
`pad_mode` 'reflect'. The paper's learning rate and schedule are not stated: 1e-3,
constant, is our choice; so is the number of steps, 20,000. Rule: the same 20,000 steps
and learning rate at any batch.

Differences from the paper: its data are EM stacks (ISBI 2012) with elastic
deformations; here the scenes (input_pipeline/scenes.py) are resized to 388x388 (labels
by nearest neighbour) with every digit as foreground (`binary_mask`: the paper's two
classes), augmented with random shifts and flips. The border weight map w(x) (eq. 2)
that separates touching cells is not used.
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = ('original', 'same')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config of `arg` = VARIANT[,smoke] ('original' when empty)."""
  parsed = config_string.parse(arg, 'seg_unet.py', variants=VARIANTS, default='original')
  variant = parsed.variant
  config = default.get_config()
  config.task = 'segmentation'

  # Data: the scenes of digits, one channel.
  config.dataset.name = 'digit_scenes'
  config.input.channels = 1
  recipes.normalize(config, 'digit_scenes')
  config.input.random_flip = True
  if variant == 'original':
    config.dataset.binary_mask = True  # two classes: background, foreground
    config.dataset.num_classes = 2
    config.input.image_size = 388  # the output tile
    config.input.pad_to = 572  # the input tile: 92 mirrored pixels a side
    config.input.pad_mode = 'reflect'
    config.input.crop_padding = 32
  else:
    config.dataset.num_classes = 11
    config.input.image_size = 48
    config.input.crop_padding = 4

  # Model.
  if variant == 'original':
    config.model.name = 'unet'
  else:
    config.model.name = 'unet_same'
    config.model.base_width = 64
    config.model.depth = 4
    config.model.up = 'transpose'

  # Optimizer.
  config.optimizer = 'sgd'
  config.momentum = 0.99
  config.nesterov = False
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.batch_size = 1

  # Schedule.
  config.lr_schedule = 'constant'
  config.num_train_steps = 20_000
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 8
  config.eval_every_steps = 2_000
  config.best_metric = 'mean_iou'

  # Runtime.
  config.log_every_steps = 200
  config.checkpoint_every_steps = 2_000

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
