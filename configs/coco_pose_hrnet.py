r"""Pose HRNet on COCO keypoints (Sun et al. 2019, "Deep High-Resolution Representation
Learning for Human Pose Estimation", arXiv 1902.09212; leoxiaobin/
deep-high-resolution-net.pytorch, experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml).

Model (models/hrnet.py, `PoseHRNet`): the HRNet backbone whose last module outputs
only the high-resolution stream, and a 1x1 conv to one heatmap per joint (17) at 1/4
of the 256x192 person crop (64x48).

Config string `VARIANT[,smoke]`:
  w32  28,536,113 parameters, 7.1 "GFLOPs" (MACs / 1024^3) at 256x192
  w48  63,595,745 parameters, 14.6
  smoke  batch 8 and 4 steps on a slice of the data.

  python main.py --config=configs/coco_pose_hrnet.py:w32 --mode=summary

Expected COCO val2017 AP (README, person detector AP 56.4, flip test): W32 74.4,
W48 75.1 at 256x192.

Recipe (the yaml files): ImageNet-pretrained backbone, Adam with learning rate 1e-3
(no weight decay: the repo passes WD only to SGD), x0.1 at epochs 170 and 200, 210
epochs, 4 GPUs x 32 crops; MSE on Gaussian heatmaps (sigma 2) of the visible joints;
rotation +-45 degrees, scale +-35%, flips with joint swapping, half-body crops
(probability 0.3). Rule: the learning rate is the same at any batch (Adam), the
schedule in epochs.

Not wired yet: the keypoints task (`config.task = 'keypoints'` is reserved) and COCO
keypoint data. This config exists for `--mode=summary`.
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = ('w32', 'w48')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` = VARIANT[,smoke] ('w32' when empty)."""
  parsed = config_string.parse(arg, 'coco_pose_hrnet.py', variants=VARIANTS, default='w32')
  config = default.get_config()
  config.task = 'keypoints'

  # Data: person crops of height 256 and width 192.
  config.dataset.name = 'coco/2017'
  config.dataset.train_split = 'train'
  config.dataset.eval_split = 'validation'
  config.dataset.num_classes = 17  # joints: one heatmap each
  config.input.channels = 3
  config.input.image_size = 256
  config.input.image_width = 192
  recipes.normalize(config, 'imagenet2012')  # the backbone's ImageNet pre-training
  config.input.random_flip = True

  # Model.
  config.model.name = f'hrnet_pose_{parsed.variant}'

  # Optimizer.
  config.batch_size = 4 * 32
  config.optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.weight_decay = 0.0

  # Schedule.
  config.num_epochs = 210.0
  config.num_train_steps = -1
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = (170.0, 200.0)
  config.lr_decay = 0.1
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 4 * 32
  config.eval_every_steps = -1

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
