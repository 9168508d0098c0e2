"""A small same-padding U-Net segmenting scenes of the embedded digits: minutes on a CPU.

Data (input_pipeline/scenes.py, `digit_scenes`): 48x48 black canvases with 1 to 4 of the
8x8 UCI digits upscaled to 16x16 and pasted at random positions; every pixel is labelled
background (0) or digit d (d + 1), 11 classes. 12,000 train scenes made of the 1,437
train digits, 1,000 test scenes made of the 360 test digits only.

Model (models/unet.py, `unet_same`): Ronneberger et al.'s U-Net with same-padded 3x3
convolutions and BatchNorm (output size = input size) and 2x2 transposed-convolution
up-sampling, here 16 maps in the first level and three levels (48, 24, 12 pixels).

  python main.py --config=configs/scenes_unet.py --workdir=/tmp/scenes_unet

Expected: test mean IoU (11 classes, background included) 0.886 in the last `test` row
of metrics.jsonl (0.877 with seed 1), in 7 minutes on a nearly idle 2-core CPU, the
dataset's preparation and compilation included (about 7.7 steps/s; README, Dense
prediction); a picture of six test scenes at each evaluation in DIR/predictions/.

Recipe (ours: the U-Net paper's is for 512x512 EM tiles, configs/seg_unet.py): Adam
(Kingma and Ba 2015; betas 0.9, 0.999, eps 1e-8), no weight decay, batch 16, 4 epochs
(3,000 steps), the learning rate 3e-3 decayed to 0 with a cosine. Rule: the learning
rate is the same at any batch, the schedule in epochs. No augmentation:
the digits already sit at random places, train and test loss stay equal, and shifts
slowed learning; no flips either (a mirrored digit is not a digit).

Config string `[smoke]`: `smoke` shrinks the run to 4 steps of 8 examples and the
U-Net to base width 4 and two levels (tests).
"""

import ml_collections

from configs import config_string, default, recipes


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config; `arg` is '' or 'smoke'."""
  parsed = config_string.parse(arg, 'scenes_unet.py')
  config = default.get_config()
  config.task = 'segmentation'

  # Data.
  config.dataset.name = 'digit_scenes'
  config.dataset.num_classes = 11  # background and the ten digits
  config.input.image_size = 48
  config.input.channels = 1
  recipes.normalize(config, 'digit_scenes')
  config.input.crop_padding = 0
  config.input.random_flip = False

  # Model.
  config.model.name = 'unet_same'
  config.model.base_width = 16
  config.model.depth = 2  # poolings: three levels
  config.model.up = 'transpose'

  # Optimizer.
  config.optimizer = 'adamw'
  config.learning_rate = 3e-3
  config.weight_decay = 0.0
  config.batch_size = 16

  # Schedule.
  config.num_epochs = 4.0
  config.num_train_steps = -1
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 200
  config.eval_every_steps = 1000
  config.best_metric = 'mean_iou'

  # Runtime.
  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
    config.model.base_width, config.model.depth = 4, 1  # compiles fast
  return config
