"""Blocks that several recipes share: dataset statistics, ImageNet's data, the CIFAR
ResNet recipe and torchvision's ImageNet recipe.

Each block sets the fields its source states, in the config's own sections; a config
file calls it where its paper uses it and changes what differs after the call.
"""

import types

import ml_collections

# Per-channel mean and standard deviation of each dataset's training images, on the
# [0, 1] scale: (mean, std).
STATS = types.MappingProxyType(
  {
    'imagenet2012': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # RGB, torchvision
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'cifar100': ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    'mnist': ((0.1307,), (0.3081,)),
    'fashion_mnist': ((0.2860,), (0.3530,)),  # the 60,000 training images
    'digits': ((0.3054,), (0.3760,)),  # the 1,437 training digits (8x8)
    'digit_scenes': ((0.078,), (0.210,)),  # the 12,000 training scenes
  }
)
IMAGENET_MEAN, IMAGENET_STD = STATS['imagenet2012']


def normalize(config: ml_collections.ConfigDict, dataset: str) -> None:
  """Normalizes the inputs by `dataset`'s statistics (a key of STATS)."""
  config.input.mean, config.input.std = STATS[dataset]


def imagenet_data(config: ml_collections.ConfigDict, image_size: int = 224) -> None:
  """ILSVRC-2012 as torchvision's reference trains and tests on it.

  Train: an Inception-style random resized crop (8%-100% of the area, aspect ratio
  3/4-4/3) to `image_size` and a random horizontal flip. Evaluation: the shorter side
  resized to 256 (224 / 0.875) and the central crop. Both normalized by the ImageNet
  mean and std. The JPEGs, of every size, stream from the host, which crops them.
  """
  config.dataset.name = 'imagenet2012'
  config.dataset.train_split = 'train'
  config.dataset.eval_split = 'validation'
  config.dataset.num_classes = 1000
  config.input.channels = 3
  config.input.image_size = image_size
  normalize(config, 'imagenet2012')
  config.input.feed = 'host'
  config.input.train_crop = 'random_resized'
  config.input.crop_area_range = (0.08, 1.0)
  config.input.crop_aspect_range = (3 / 4, 4 / 3)
  config.input.crop_padding = 0
  config.input.random_flip = True
  config.input.eval_crop = 'center'
  config.input.eval_resize = 256


def torchvision_imagenet_recipe(
  config: ml_collections.ConfigDict, learning_rate: float = 0.1
) -> None:
  """torchvision's classification reference (references/classification).

  SGD with momentum 0.9, batch 256, weight decay 1e-4 on every parameter, 90 epochs,
  the learning rate x0.1 every 30 epochs. Rule: peak lr = `learning_rate` x batch / 256,
  schedule in epochs.
  """
  config.batch_size = 256
  config.optimizer = 'sgd'
  config.learning_rate = learning_rate
  config.lr_batch = 256
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 1e-4
  config.weight_decay_mask = 'all'
  config.num_epochs = 90.0
  config.num_train_steps = -1
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = (30.0, 60.0)
  config.lr_decay = 0.1
  config.warmup_epochs = 0.0


def krizhevsky_recipe(
  config: ml_collections.ConfigDict, batch_size: int, num_epochs: float
) -> None:
  """Krizhevsky et al. 2012, section 5, which Simonyan and Zisserman (VGG, section 3.1)
  follow: SGD with momentum 0.9, weight decay 5e-4 on the weights, learning rate 0.01
  divided by 10 three times when the validation error stopped improving; here at fixed
  points, a quarter, half and three quarters of `num_epochs`.

  Rule: peak lr = 0.01 x batch / `batch_size`, schedule in epochs.
  """
  config.batch_size = batch_size
  config.optimizer = 'sgd'
  config.learning_rate = 0.01
  config.lr_batch = batch_size
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 5e-4
  config.weight_decay_mask = 'kernels'  # cuda-convnet decayed the weights only
  config.num_epochs = num_epochs
  config.num_train_steps = -1
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = tuple(num_epochs * i / 4 for i in (1, 2, 3))
  config.lr_decay = 0.1
  config.warmup_epochs = 0.0


def cifar_model(config: ml_collections.ConfigDict, variant: str) -> int:
  """The CIFAR ResNet or plain net of He et al. 2015, section 4.2, named by `variant`:
  'N' (6n+2 layers, zero-padded identity shortcuts, option A), 'N_b' (projection
  shortcuts where the shape changes, option B) or 'plainN' (no shortcuts).

  Returns:
    The depth N.
  """
  plain, option_b = variant.startswith('plain'), variant.endswith('_b')
  depth = int(variant.removeprefix('plain').removesuffix('_b'))
  config.model.name = f'cifar_plain{depth}' if plain else f'cifar_resnet{depth}'
  config.model.shortcut = 'none' if plain else ('B' if option_b else 'A')
  config.model.zero_init_residual = False
  return depth


def cifar_sgd(config: ml_collections.ConfigDict) -> None:
  """The optimizer of He et al. 2015, section 4.2: SGD with momentum 0.9, weight decay
  1e-4 on every parameter (Caffe's solver), batch 128, learning rate 0.1.

  Rule: peak lr = 0.1 x batch / 128.
  """
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = 0.1
  config.lr_batch = 128
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 1e-4
  config.weight_decay_mask = 'all'


def cifar_schedule(config: ml_collections.ConfigDict, warmup_steps: int = 0) -> None:
  """The schedule of He et al. 2015, section 4.2, in iterations of its batch of 128:
  the learning rate divided by 10 at 32k and 48k iterations, training stops at 64k;
  `warmup_steps` of linear warm-up (ResNet-110: "about 400 iterations").

  Rule: at batch B the steps, warm-up and drops scale by 128 / B (the same epochs).
  """
  config.schedule_batch = 128
  config.num_train_steps = 64_000
  config.num_epochs = -1.0  # the length is num_train_steps
  config.lr_schedule = 'step'
  config.lr_boundaries_steps = (32_000, 48_000)
  config.lr_boundaries_epochs = ()
  config.lr_decay = 0.1
  config.warmup_steps = warmup_steps
  config.warmup_epochs = 0.0
