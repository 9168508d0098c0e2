"""The CIFAR ResNets and their plain twins (He, Zhang, Ren and Sun 2015, arXiv
1512.03385, section 4.2) on the embedded 8x8 handwritten digits: the degradation
experiment of Fig. 6 at a size a laptop CPU trains in a minute.

Models as in configs/cifar10_resnet.py: a 3x3 convolution to 16 maps, three stages of
n BasicBlocks (16/32/64 filters, here at 8/4/2 pixels), global average pooling and a
10-way fully connected layer, 6n+2 weighted layers; identity shortcuts zero-padded where
the channels double (option A); the plain nets have none. At 8x8 a net costs 1/16 of
its CIFAR multiply-accumulates (ResNet-20: 2.5M instead of 40.6M).

Data: the 1,437 / 360 images of input_pipeline/digits.py at their stored 8x8, normalized
with the training set's mean and std (as configs/digits_lenet5.py). Augmentation scaled
from the paper's 4 pixels of padding at 32x32 to 1 pixel at 8x8, a random 8x8 crop; no
flips (a mirrored digit is another symbol).

Recipe (section 4.2, shortened): SGD with momentum 0.9, weight decay 1e-4 on every
parameter, batch 128, learning rate 0.1 divided by 10 at 50% and 75% of training (the
paper's 32k and 48k of 64k iterations: epochs 10 and 15), 20 epochs of 11 steps
instead of 64k iterations. Rule: peak lr = 0.1 x batch / 128, schedule in epochs.
Every net warms up, linearly over its first 2 epochs, as the paper warms up ResNet-110:
at 0.1 from the start the 56-layer nets stayed near chance here (63% and 60% test error
after 30 epochs, seed 0), with the warm-up ResNet-56 reached 1.1% (30 epochs, seed 0).

Config string `VARIANT[,smoke]`:
  VARIANT   20 | 32 | 44 | 56 (ResNets) or plain20 | plain32 | plain44 | plain56
  smoke     batch 8 and 4 steps on a slice of the data: checks that it runs.

Run:
  python main.py --config=configs/digits_resnet.py:20 --workdir=/tmp/digits_resnet20

Expected (configs/tables/digits.py; README "Reproducing the tables"): test error
ResNet-20 1.11 +- 0.83%, plain-20 2.96 +- 0.85% (3 seeds), ResNet-56 2.2%, plain-56
63% (1 seed); 45 s per ResNet-20 run on a loaded 2-core CPU. Nothing is published for
these nets on this data.
"""

import ml_collections

from configs import config_string, default, recipes

DEPTHS = ('20', '32', '44', '56')
VARIANTS = DEPTHS + tuple('plain' + d for d in DEPTHS)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `VARIANT[,smoke]`, e.g. '20', 'plain56', '20,smoke'.

  Returns:
    The ConfigDict ('20' when `arg` is empty).
  """
  parsed = config_string.parse(arg, 'digits_resnet.py', variants=VARIANTS, default='20')
  config = default.get_config()

  # Data: the stored 8x8 images, 1 pixel of padding and a random 8x8 crop.
  config.dataset.name = 'digits'
  config.dataset.num_classes = 10
  config.input.image_size = 8
  config.input.channels = 1
  recipes.normalize(config, 'digits')
  config.input.crop_padding = 1
  config.input.random_flip = False

  # Model.
  recipes.cifar_model(config, parsed.variant)

  # Optimizer: section 4.2.
  recipes.cifar_sgd(config)

  # Schedule: the drops at 50% and 75% of the run, as the paper's 32k and 48k of 64k.
  config.num_epochs = 20.0
  config.num_train_steps = -1
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = (10.0, 15.0)
  config.lr_decay = 0.1
  config.warmup_epochs = 2.0

  # Eval: every 2 epochs, for the error curves.
  config.eval_batch_size = 120  # 360 test images in 3 batches
  config.eval_every_epochs = 2.0

  # Runtime.
  config.log_every_steps = 11

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
