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
quarter, half and three quarters of the run (epochs 22.5, 45 and 67.5). Rule, both
recipes: peak lr = 0.01 x batch / (its batch: 256, `original` 128), schedule in
epochs. The paper's mean-image subtraction on
0-255 pixels becomes the mean RGB with std 1/255, which keeps the paper's input scale
(its N(0, 0.01) initialization relies on it). The paper averages the ten patches'
softmax outputs, this config their logits. Not expressed by this config: the PCA
colour augmentation (section 4.1).
"""

import ml_collections

from configs import config_string, default, recipes


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `[original][,smoke]`: '' for torchvision's net and recipe, 'original' for
      the paper's.

  Returns:
    The ConfigDict.
  """
  parsed = config_string.parse(arg, 'imagenet_alexnet.py', variants=('original',))
  original = parsed.variant == 'original'
  config = default.get_config()

  # Data.
  recipes.imagenet_data(config, image_size=227 if original else 224)
  if original:
    # The paper feeds raw 0-255 pixels minus the mean; torchvision standardizes.
    config.input.std = (1.0 / 255.0,) * 3
    config.input.train_crop = 'scale_jitter'
    config.input.shorter_side_range = (256, 256)
    config.input.eval_crop = 'ten_crop'

  # Model.
  config.model.name = 'alexnet_original' if original else 'alexnet'
  config.model.dropout_rate = 0.5

  # Optimizer and schedule.
  if original:  # section 5; three drops, at fixed points instead of the paper's plateaus
    recipes.krizhevsky_recipe(config, batch_size=128, num_epochs=90.0)
  else:  # torchvision: --lr 0.01 --lr-step-size 30 --lr-gamma 0.1
    recipes.torchvision_imagenet_recipe(config, learning_rate=0.01)

  # Eval and runtime.
  config.eval_batch_size = 256
  config.log_every_steps = 100

  if 'smoke' in parsed:  # the smallest that survives conv1 and three pools
    default.shrink_for_smoke_test(config, image_size=67)
  return config
