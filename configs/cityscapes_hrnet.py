r"""HRNetV2 semantic segmentation on Cityscapes (Wang et al. 2019, arXiv 1908.07919,
section 4; HRNet/HRNet-Semantic-Segmentation, experiments/cityscapes/
seg_hrnet_*_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml).

Model (models/hrnet.py, `HRNetV2Seg`): the HRNet backbone with bilinear fusion, all
four streams resized to 1/4 and concatenated, 1x1 conv + BN + ReLU and a 1x1
classifier to the 19 Cityscapes classes, at 1/4 of the input resolution.

Config string `VARIANT[,smoke]`:
  w18_small_v1  1,540,819 parameters, 31.1 "GFLOPs" (MACs / 1024^3) at 1024x2048
  w18_small_v2  3,939,579 parameters, 71.6
  w48           65,859,379 parameters, 696.2
  smoke         batch 8 and 4 steps on a slice of the data.

  python main.py --config=configs/cityscapes_hrnet.py:w48 --mode=summary

Expected Cityscapes val mIoU (README, single scale, no flip): W18-Small-v1 70.3,
W18-Small-v2 76.2, W48 80.9 (81.2 with OHEM).

Recipe (the yaml files): ImageNet-pretrained backbone, SGD momentum 0.9 (no Nesterov),
learning rate 0.01 for 4 GPUs x 3 = 12 crops, weight decay 5e-4, 484 epochs with the
"poly" decay (1 - t / T)^0.9, random scale 0.5-2.0, 512x1024 crops and horizontal
flips; pixel-wise cross-entropy ignoring label 255; evaluation on the full 1024x2048
images. `align_corners=False` (MODEL.ALIGN_CORNERS of every Cityscapes config). Rule:
peak lr = 0.01 x batch / 12, schedule in epochs.

Not wired yet: the Cityscapes data (TFDS `cityscapes/semantic_segmentation` needs the
archives by hand, and its 34 label ids map to the 19 train ids); the poly schedule
(cosine to 0 stands in); non-square crops in the dense pipeline (`image_size` x
`image_width` here fixes the summary's input). This config exists for `--mode=summary`.
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = ('w18_small_v1', 'w18_small_v2', 'w48')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` = VARIANT[,smoke] ('w48' when empty)."""
  parsed = config_string.parse(arg, 'cityscapes_hrnet.py', variants=VARIANTS, default='w48')
  config = default.get_config()
  config.task = 'segmentation'

  # Data.
  config.dataset.name = 'cityscapes/semantic_segmentation'
  config.dataset.train_split = 'train'
  config.dataset.eval_split = 'validation'
  config.dataset.num_classes = 19
  config.ignore_label = 255
  config.input.channels = 3
  config.input.image_size = 512  # crop height
  config.input.image_width = 1024
  recipes.normalize(config, 'imagenet2012')  # the backbone's ImageNet pre-training
  config.input.scale_range = (0.5, 2.0)
  config.input.random_flip = True

  # Model.
  config.model.name = f'hrnet_seg_{parsed.variant}'
  config.model.align_corners = False

  # Optimizer.
  config.batch_size = 4 * 3
  config.optimizer = 'sgd'
  config.learning_rate = 0.01
  config.lr_batch = 12
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 5e-4
  config.weight_decay_mask = 'all'

  # Schedule.
  config.num_epochs = 484.0
  config.num_train_steps = -1
  config.lr_schedule = 'cosine'  # the repo's poly decay is not available
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 4 * 4
  config.eval_every_steps = -1
  config.best_metric = 'mean_iou'

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
