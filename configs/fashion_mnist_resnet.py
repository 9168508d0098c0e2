r"""The CIFAR ResNets and their plain twins (He, Zhang, Ren and Sun 2015, arXiv
1512.03385, section 4.2) on Fashion-MNIST: does the degradation of deep plain nets
show on this data too?

Models as in configs/cifar10_resnet.py: a 3x3 convolution to 16 maps, three stages of
n BasicBlocks (16/32/64 filters at 32/16/8 pixels), global average pooling and a
10-way fully connected layer, 6n+2 weighted layers; identity shortcuts, zero-padded
where the channels double (option A, no parameters); the plain nets have none.

Data: the 28x28 grayscale images (our builder `fashion_mnist_idx`,
input_pipeline/idx.py; `apt-get install dataset-fashion-mnist`) zero-padded to the
nets' 32x32 input, normalized with the training set's mean and std, and the CIFAR
augmentation of section 4.2: 4 pixels of padding on each side, a random 32x32 crop and
a random horizontal flip.

Recipe (section 4.2, unchanged): SGD with momentum 0.9, weight decay 1e-4 on every
parameter, batch 128, learning rate 0.1 divided by 10 at 32k and 48k iterations, stop
at 64k iterations (137 epochs of the 60,000 images). Rule, as for CIFAR: the schedule
is in iterations at batch 128; at batch B the steps and drops scale by 128/B and the
peak learning rate by B/128.

Config string `VARIANT[,smoke]`:
  VARIANT   20 | 56 (ResNets) or plain20 | plain56
  smoke     batch 8 and 4 steps on a slice of the data: checks that it runs.

Run (on a GPU: on a 2-core CPU ResNet-20 trains at ~60 images/s, about 36 hours for
the 64k iterations; ResNet-56 about 110; configs/tables/fashion_mnist.py):
  python main.py --config=configs/fashion_mnist_resnet.py:20 --workdir=/tmp/fm_resnet20

Expected: nothing published for these nets on Fashion-MNIST; the README's benchmark
has ResNet18 at 0.949 and WRN-28-10 at 0.959 test accuracy. On CIFAR-10 the paper's
ResNet-56 beats ResNet-20 (6.97% vs 8.75% error) while plain-56 is worse than plain-20
(Fig. 6).
"""

import ml_collections

from configs import config_string, default, recipes

VARIANTS = ('20', '56', 'plain20', 'plain56')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `VARIANT[,smoke]`, e.g. '20', 'plain56', '56,smoke'.

  Returns:
    The ConfigDict ('20' when `arg` is empty).
  """
  parsed = config_string.parse(arg, 'fashion_mnist_resnet.py', variants=VARIANTS, default='20')
  config = default.get_config()

  # Data: 28x28 -> 32x32 by zero padding, then the CIFAR augmentation.
  config.dataset.name = 'fashion_mnist_idx'
  config.dataset.num_classes = 10
  config.input.image_size = 0
  config.input.pad_to = 32
  config.input.channels = 1
  recipes.normalize(config, 'fashion_mnist')
  config.input.crop_padding = 4
  config.input.random_flip = True

  # Model.
  recipes.cifar_model(config, parsed.variant)

  # Optimizer and schedule: section 4.2, in iterations of 128 images.
  recipes.cifar_sgd(config)
  recipes.cifar_schedule(config)

  # Eval and runtime.
  config.eval_batch_size = 1000
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
