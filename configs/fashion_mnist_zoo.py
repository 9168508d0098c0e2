r"""The zoo's ImageNet networks on Fashion-MNIST: the ResNet18, VGG16 and GoogleNet rows
of the Fashion-MNIST README's benchmark (configs/tables/fashion_mnist.py).

Data: the 28x28 grayscale images (our builder `fashion_mnist_idx`,
input_pipeline/idx.py; `apt-get install dataset-fashion-mnist`), normalized with the
training set's mean and std; training augmentation: a random horizontal flip and a
random crop after zero padding by 4 pixels of the original image (8 at 2x scale).

Adapting 224x224 networks to 28x28 images. The networks are unchanged (ImageNet layer
for layer, 1 input channel, 10 outputs); only the input size is chosen so that the
stride-32 stack still ends on a spatial map:
  resnet18   the images upsampled 2x (bilinear, 28 -> 56) and zero-padded to 64: the
             7x7/2 stem and 3x3/2 max pool give 16x16, the four stages 16, 8, 4 and 2
             pixels, then the global average pool.
  googlenet  the same 64x64 input: stem 64 -> 32 -> 16 -> 8, inception 3 at 8, 4 at 4,
             5 at 2, global average pool; torchvision's network with BatchNorm, no
             auxiliary classifiers.
  vgg16      the images zero-padded to 32 (as for LeNet-5): the five 2x2 max pools
             give 1x1x512, which the adaptive average pool repeats to torchvision's
             7x7 input of fc6, so the head is the ImageNet one (most of the
             parameters are in fc6). The published 26M-parameter VGG16 instead
             dropped the fifth conv block and flattened 1x1x512 into its 4096-unit
             layers.

Per image (--mode=summary): ResNet-18 11.2M parameters and 142M multiply-accumulates
at 64x64, GoogLeNet 5.6M and 116M at 64x64, VGG-16 134.3M and 432M at 32x32 (LeNet-5:
0.06M and 0.4M): about a day (ResNet-18, GoogLeNet) to several (VGG-16) of training on
a 2-core CPU for the 30 epochs (estimates: configs/tables/fashion_mnist.py); meant for
an accelerator.

Recipe (ours; the published rows are user submissions with their own): SGD with
Nesterov momentum 0.9, batch 128, weight decay 5e-4 on kernels only, one epoch of
linear warm-up, then cosine to 0 over 30 epochs; peak learning rate 0.1 for the
BatchNorm networks, 0.01 for VGG-16, which has no normalization. Rule: the learning
rate is the same at any batch, the schedule in epochs.

Config string `MODEL[,smoke]`:
  MODEL  resnet18 | vgg16 | googlenet
  smoke  batch 8 and 4 steps on a slice of the data: checks that it runs.

Run:
  python main.py --config=configs/fashion_mnist_zoo.py:resnet18 --workdir=/tmp/fm_resnet18

Expected (the README's benchmark, test accuracy): ResNet18 0.949, GoogleNet 0.937,
VGG16 0.935.
"""

import ml_collections

from configs import config_string, default, recipes

# model -> (image_size: resize to, pad_to: then zero-pad to, crop_padding, lr).
INPUTS = {
  'resnet18': (56, 64, 8, 0.1),
  'googlenet': (56, 64, 8, 0.1),
  'vgg16': (0, 32, 4, 0.01),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `MODEL[,smoke]`, e.g. 'resnet18', 'vgg16,smoke'.

  Returns:
    The ConfigDict ('resnet18' when `arg` is empty).
  """
  parsed = config_string.parse(
    arg, 'fashion_mnist_zoo.py', variants=tuple(INPUTS), default='resnet18'
  )
  name = parsed.variant
  image_size, pad_to, crop_padding, learning_rate = INPUTS[name]
  config = default.get_config()

  # Data.
  config.dataset.name = 'fashion_mnist_idx'
  config.dataset.num_classes = 10
  config.input.image_size = image_size
  config.input.resize_method = 'bilinear'
  config.input.pad_to = pad_to
  config.input.channels = 1
  recipes.normalize(config, 'fashion_mnist')
  config.input.crop_padding = crop_padding
  config.input.random_flip = True

  # Model: the registry's network, unchanged.
  config.model.name = name

  # Optimizer.
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = learning_rate
  config.momentum = 0.9
  config.nesterov = True
  config.weight_decay = 5e-4
  config.weight_decay_mask = 'kernels'

  # Schedule.
  config.num_epochs = 30.0
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 1.0

  # Eval.
  config.eval_batch_size = 500
  config.eval_every_steps = -1  # once per epoch

  # Runtime.
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
