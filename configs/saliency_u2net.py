"""U^2-Net (Qin, Zhang, Huang, Dehghan, Zaiane and Jagersand 2020, "U^2-Net: Going
Deeper with Nested U-Structure for Salient Object Detection", arXiv 2005.09007).

Model (models/u2net.py): six encoder and five decoder stages of residual U-blocks
(RSU-7 .. RSU-4, and RSU-4F with dilations instead of pooling), six side outputs and
their 1x1 fusion; each side output is up-sampled (bilinear) to the input size.

Config string `VARIANT[,smoke]`:
  full   `u2net`, 44,009,869 parameters (the paper: 176.3 MB).
  small  `u2netp` (U^2-Net-dagger), every stage 16 mid and 64 out channels: 1,131,181
         parameters (4.7 MB).
  smoke  batch 8 and 4 steps on a slice of the data.

  python main.py --config=configs/saliency_u2net.py:small --workdir=/tmp/u2netp

Data: the paper trains on DUTS-TR (10,553 images), not in TFDS; here the binary
foreground of the digit scenes (input_pipeline/scenes.py: every digit pixel salient),
48x48, their grey channel repeated into the network's three. Expected on DUTS-TE and
the other benchmarks: the paper's tables.

Recipe (the paper's implementation details): deep supervision, the loss is the sum of
the binary cross-entropies of the six side outputs and of the fused output, all weights
1 (`aux_loss_weight`); Adam with learning rate 1e-3, betas (0.9, 0.999), eps 1e-8,
weight decay 0; batch 12; 600k iterations, without a validation set. The paper resizes
each image to 320x320, flips it at random and crops 288x288 at random; the scenes are
used at their size with random shifts and horizontal flips, and are trained for 20
epochs (our choice). Rule: the learning rate is the same at any batch, the schedule in
epochs.
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = {'full': 'u2net', 'small': 'u2netp'}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config of `arg` = VARIANT[,smoke] ('full' when empty)."""
  parsed = config_string.parse(arg, 'saliency_u2net.py', variants=tuple(VARIANTS), default='full')
  config = default.get_config()
  config.task = 'saliency'

  # Data: the scenes' foreground (labels > 0), one output channel.
  config.dataset.name = 'digit_scenes'
  config.dataset.num_classes = 1
  config.input.image_size = 48
  config.input.channels = 3  # the paper's RGB input; grey scenes repeat their channel
  recipes.normalize(config, 'digit_scenes')
  config.input.crop_padding = 4
  config.input.random_flip = True

  # Model.
  config.model.name = VARIANTS[parsed.variant]
  config.aux_loss_weight = 1.0  # every side output weighs as much as the fusion

  # Optimizer: Adam (adamw with no decay).
  config.optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.batch_size = 12

  # Schedule.
  config.lr_schedule = 'constant'
  config.num_epochs = 20.0
  config.num_train_steps = -1
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 100
  config.eval_every_epochs = 2.0
  config.best_metric = 'max_f'

  # Runtime.
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
