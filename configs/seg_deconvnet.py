"""DeconvNet (Noh, Hong and Han 2015, "Learning Deconvolution Network for Semantic
Segmentation", arXiv 1505.04366).

Model (models/deconvnet.py, `deconvnet`): the 13 convolutions of VGG-16 with BatchNorm,
each 2x2 max pooling recording its switches; fc6 and fc7 as 7x7 and 1x1 convolutions
(224 -> 1x1x4096); a mirrored decoder of deconvolutions (transposed convolutions) and
unpoolings that put each value back at its switch; a 1x1 classifier. PASCAL VOC's 21
classes: 251,805,653 parameters (37.7 GMACs at 224x224).

Config string `VARIANT[,smoke]`:
  voc     the paper's set-up: PASCAL VOC 2012 (with the extra annotations of Hariharan
          et al.), 3 channels, 21 classes, 224x224. TFDS has no VOC segmentation
          masks, so this variant is for `--mode=summary`, or for a TFDS builder of VOC
          masks named with --config.dataset.name.
  scenes  the same network and recipe on the digit scenes (11 classes, 1 channel)
          resized to 224x224: it runs anywhere.
  smoke   batch 8 and 4 steps on a slice of the data.

  python main.py --config=configs/seg_deconvnet.py --mode=summary
  python main.py --config=configs/seg_deconvnet.py:scenes --workdir=/tmp/deconvnet

Expected (VOC 2012 test mean IoU, the paper's tables): DeconvNet 69.6, EDeconvNet
(ensembled with FCN-8s) 71.5, EDeconvNet + CRF 72.5.

Recipe (the paper's training details): SGD with learning rate 0.01, momentum 0.9 and
weight decay 5e-4; batch 64; the VGG-16 part initialised from ImageNet (not here:
--config.init_from); the deconvolution network's weights from zero-mean Gaussians;
BatchNorm after every convolution and deconvolution. Training examples are 250x250
from which 224x224 crops are taken at random, with optional horizontal flips: here each
image is resized to 224x224 and scaled by 250/224 before the random 224x224 crop. The
paper trains in two stages (first on object-centred crops, then on harder examples);
this config is one stage on whole images, with a constant learning rate for 50 epochs.
Rule: the learning rate is the same at any batch, the schedule in epochs.
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = ('voc', 'scenes')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config of `arg` = VARIANT[,smoke] ('voc' when empty)."""
  parsed = config_string.parse(arg, 'seg_deconvnet.py', variants=VARIANTS, default='voc')
  config = default.get_config()
  config.task = 'segmentation'

  # Data.
  if parsed.variant == 'voc':
    config.dataset.name = 'voc/2012'  # needs a builder with segmentation masks
    config.dataset.eval_split = 'validation'
    config.dataset.num_classes = 21  # background and 20 object classes
    config.input.channels = 3
    recipes.normalize(config, 'imagenet2012')
  else:
    config.dataset.name = 'digit_scenes'
    config.dataset.num_classes = 11
    config.input.channels = 1
    recipes.normalize(config, 'digit_scenes')
  config.input.image_size = 224
  config.input.scale_range = (250 / 224, 250 / 224)  # 250x250, then a random 224 crop
  config.input.random_flip = True

  # Model.
  config.model.name = 'deconvnet'

  # Optimizer.
  config.optimizer = 'sgd'
  config.learning_rate = 0.01
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 5e-4
  config.weight_decay_mask = 'all'  # Caffe decays every parameter
  config.batch_size = 64

  # Schedule.
  config.lr_schedule = 'constant'
  config.num_epochs = 50.0
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 64
  config.best_metric = 'mean_iou'

  # Runtime.
  config.log_every_steps = 50

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
