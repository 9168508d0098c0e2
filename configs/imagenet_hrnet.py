r"""HRNet-C on ImageNet (Wang et al. 2019, "Deep High-Resolution Representation Learning
for Visual Recognition", arXiv 1908.07919, section 6; HRNet/HRNet-Image-Classification,
experiments/cls_hrnet_*_sgd_lr5e-2_wd1e-4_bs32_x100.yaml).

Models (models/hrnet.py): four parallel streams at 1/4..1/32 with repeated fusion, and
the incremental Bottleneck head merged down to 2048 channels, pooled and classified.

Config string `VARIANT[,smoke]`:
  VARIANT  w18_small_v1 | w18_small_v2 | w18 | w30 | w32 | w40 | w44 | w48 | w64
           (params / "GFLOPs" = MACs / 1024^3 at 224, the README's convention:
           13.2M/1.49, 15.6M/2.42, 21.3M/3.99, 37.7M/7.55, 41.2M/8.31, 57.6M/11.8,
           67.1M/13.9, 77.5M/16.1, 128.1M/26.9).
  smoke    64x64 inputs, batch 8 and 4 steps on a slice of the data: checks that the
           pipeline runs, trains nothing.

Run (8 devices):
  python main.py --config=configs/imagenet_hrnet.py:w18 --workdir=/tmp/hrnet_w18 \
      --config.dataset.data_dir=$TFDS_DATA_DIR

Expected single-crop top-1 / top-5 error (README): W18-Small-v1 27.7/9.3,
W18-Small-v2 24.9/7.6, W18 23.2/6.6, W30 21.8/5.8, W32 21.5/5.8, W40 21.1/5.5,
W44 21.1/5.6, W48 20.7/5.5, W64 20.5/5.4. timm's ports of those weights: top-1 72.34,
75.09, 76.77, 78.20, 78.45, 78.93, 78.89, 79.33, 79.46.

Recipe (the yaml files): SGD with Nesterov momentum 0.9, learning rate 0.05 for 4 GPUs
x 32 = 128 images, weight decay 1e-4 on every parameter (PyTorch's SGD
`weight_decay`), 100 epochs, learning rate x0.1 at epochs 30, 60 and 90. Rule: peak
lr = 0.05 x batch / 128, schedule in epochs. Train: random-resized crop to 224 and a
horizontal flip; evaluation: shorter side to 256 (224 / 0.875) and the central 224
crop; ImageNet mean and std.
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = ('w18_small_v1', 'w18_small_v2', 'w18', 'w30', 'w32', 'w40', 'w44', 'w48', 'w64')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `VARIANT[,smoke]`, e.g. 'w18', 'w48', 'w18_small_v1,smoke'.

  Returns:
    The ConfigDict ('w18' when `arg` is empty).
  """
  parsed = config_string.parse(arg, 'imagenet_hrnet.py', variants=VARIANTS, default='w18')
  config = default.get_config()

  # Data.
  recipes.imagenet_data(config)

  # Model.
  config.model.name = f'hrnet_{parsed.variant}'

  # Optimizer: 0.05 for 4 GPUs x 32 images, scaled linearly.
  config.batch_size = 4 * 32
  config.optimizer = 'sgd'
  config.learning_rate = 0.05
  config.lr_batch = 128
  config.momentum = 0.9
  config.nesterov = True
  config.weight_decay = 1e-4
  config.weight_decay_mask = 'all'

  # Schedule.
  config.num_epochs = 100.0
  config.num_train_steps = -1
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = (30.0, 60.0, 90.0)
  config.lr_decay = 0.1
  config.warmup_epochs = 0.0

  # Eval and runtime.
  config.eval_batch_size = 4 * 32
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config, image_size=64)
  return config
