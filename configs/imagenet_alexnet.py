r"""AlexNet on ImageNet (ILSVRC-2012).

Krizhevsky, Sutskever and Hinton 2012, "ImageNet classification with deep convolutional
neural networks" (NIPS), and torchvision's single-tower AlexNet.

  python main.py --config=configs/imagenet_alexnet.py --workdir=/tmp/alexnet
  python main.py --config=configs/imagenet_alexnet.py:original \
      --workdir=/tmp/alexnet_original

Config string `[original][,smoke]`; `smoke` shrinks the run to 67x67 inputs, batch 8
and 4 steps on a slice of the data: it checks that the pipeline runs, trains nothing.

Variants and expected results:
  (none)    `alexnet`, torchvision's 64-192-384-256-256 net and its reference recipe
            (references/classification: 8 GPUs x 32 images, lr 0.01, momentum 0.9,
            weight decay 1e-4 on every parameter, lr x0.1 every 30 epochs, 90 epochs).
            Expected: its IMAGENET1K_V1 weights reach 56.522% top-1 and 79.066% top-5
            on the validation set (one 224 centre crop of the 256-resized image).
  original  `alexnet_original`, the paper's two-tower net on 227x227 inputs and its
            section 5 recipe: SGD, batch 128, momentum 0.9, weight decay 5e-4, lr 0.01
            divided by 10 three times when the validation error stopped improving,
            about 90 epochs, dropout 0.5 in fc6 and fc7. Expected (one CNN, ILSVRC-2012
            validation): 40.7% top-1 and 18.2% top-5 error, i.e. 59.3% / 81.8% accuracy,
            from the ten test patches (section 4.1), as evaluated here.

Inputs, streamed from the host (input_pipeline/stream.py). `original` (section 4.1):
the image rescaled so its shorter side is 256, a random crop (227 here, the size its
layers need; the paper writes 224) and a random horizontal flip; testing on the ten
patches (the four corner crops and the central one of the 256-rescaled image and their
mirror images), the network's outputs averaged. The paper first cuts the central
256x256 square and crops inside it; here the crop may fall anywhere in the rescaled
image. Torchvision's net: Inception-style random resized crops to 224 and flips;
testing on the central 224 crop of the image resized to 256.

The paper lowered the rate by hand on plateaus; here the three drops are fixed at a
quarter, half and three quarters of the run. The paper's mean-image subtraction on
0-255 pixels becomes the mean RGB with std 1/255, which keeps the paper's input scale
(its N(0, 0.01) initialization relies on it). The paper averages the ten patches'
softmax outputs, this config their logits. Not expressed by this config: the PCA
colour augmentation (section 4.1).
"""

import ml_collections

from configs import default
from train_lib.errors import UserError

VARIANTS = ('', 'original')
MODIFIERS = ('smoke',)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, on the [0, 1] scale
IMAGENET_STD = (0.229, 0.224, 0.225)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `[original][,smoke]`: '' for torchvision's net and recipe, 'original' for
      the paper's.

  Returns:
    The ConfigDict.
  """
  variant, *modifiers = (arg or '').split(',')
  if variant not in VARIANTS or any(m not in MODIFIERS for m in modifiers):
    raise UserError(f"bad config string '{arg}' for imagenet_alexnet.py: use [original][,smoke]")
  original = variant == 'original'
  config = default.get_config()

  # Data.
  config.dataset.name = 'imagenet2012'
  config.dataset.train_split = 'train'
  config.dataset.eval_split = 'validation'
  config.dataset.num_classes = 1000
  config.input.channels = 3
  config.input.image_size = 227 if original else 224
  config.input.mean = IMAGENET_MEAN
  # The paper feeds raw 0-255 pixels minus the mean; torchvision standardizes.
  config.input.std = (1.0 / 255.0,) * 3 if original else IMAGENET_STD
  config.input.feed = 'host'  # JPEGs of every size, cropped on the host
  if original:
    config.input.train_crop = 'scale_jitter'
    config.input.shorter_side_range = (256, 256)
    config.input.eval_crop = 'ten_crop'
  else:
    config.input.train_crop = 'random_resized'
    config.input.eval_crop = 'center'
  config.input.eval_resize = 256
  config.input.crop_padding = 0
  config.input.random_flip = True

  # Model.
  config.model.name = 'alexnet_original' if original else 'alexnet'
  config.model.dropout_rate = 0.5

  # Optimizer.
  config.batch_size = 128 if original else 256
  config.optimizer = 'sgd'
  config.learning_rate = 0.01 * config.batch_size / (128 if original else 256)
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 5e-4 if original else 1e-4
  # cuda-convnet decayed weights only; torchvision's reference decays every parameter.
  config.weight_decay_mask = 'kernels' if original else 'all'

  # Schedule.
  config.num_epochs = 90.0
  config.warmup_epochs = 0.0
  config.lr_schedule = 'step'
  config.lr_decay = 0.1
  if original:  # three drops, at fixed points instead of the paper's plateaus
    config.lr_boundaries_epochs = tuple(config.num_epochs * i / 4 for i in (1, 2, 3))
  else:  # torchvision: --lr-step-size 30 --lr-gamma 0.1
    config.lr_boundaries_epochs = (30.0, 60.0)

  # Eval.
  config.eval_batch_size = 256
  config.eval_every_steps = -1  # once per epoch

  # Runtime.
  config.seed = 0
  config.half_precision = False
  config.log_every_steps = 100
  config.checkpoint_every_steps = -1

  if 'smoke' in modifiers:  # the smallest that survives conv1 and three pools
    default.shrink_for_smoke_test(config, image_size=67)
    config.input.shorter_side_range = (76, 76)  # 67 * 256 / 227
    config.input.eval_resize = 76
  return config
