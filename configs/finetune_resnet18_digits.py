r"""Fine-tuning an ImageNet ResNet-18 (torchvision's weights) on the embedded digits.

Transfer learning as Yosinski et al. 2014 ("How transferable are features in deep
neural networks?") and Kornblith et al. 2019 ("Do better ImageNet models transfer
better?") do it: every layer starts from the ImageNet weights except the classifier,
which is new (10 classes instead of 1000), and the whole network trains with SGD at a
learning rate well below the from-scratch one.

Weights: torchvision's `resnet18` state dict, as a .safetensors or .pth file (download
it where there is network, e.g. `torchvision.models.resnet18(weights='DEFAULT')`,
then `safetensors.torch.save_file(model.state_dict(), 'resnet18.safetensors')`).
Loading is not strict: `fc` keeps its fresh initialisation, and conv1's kernel is
summed over its RGB inputs for the gray digits (the same as feeding the digit three
times). The run's first step imports the file into DIR as its step-0 checkpoint:

  python main.py --config=configs/finetune_resnet18_digits.py --workdir=/tmp/ft18 \
      --config.init_from=resnet18.safetensors

Without --config.init_from the same command trains from scratch: the baseline.

Data: the 1,437 / 360 digits of input_pipeline/digits.py, 8x8 upsampled to 32x32 (the
nets' stride-32 features end at 1x1), normalised with ImageNet's mean and standard
deviation averaged over the colours, the scale the weights were trained at; random
shifts of up to 2 pixels. Predict resizes images as the evaluation does (to 32x32 on
the device).

Recipe (ours): SGD with momentum 0.9, learning rate 0.01, batch 64, weight decay 1e-4
on the kernels, 10 epochs with a cosine decay to 0. Rule: the learning rate is the same
at any batch, the schedule in epochs.

Config string `[smoke]`: batch 8 and 4 steps on a slice of the data.

Expected: not measured here (no network for the weights on this machine).
"""

import ml_collections

from configs import config_string, default, recipes

# ImageNet's per-channel statistics (torchvision), averaged over R, G and B.
GRAY_MEAN = (sum(recipes.IMAGENET_MEAN) / 3,)
GRAY_STD = (sum(recipes.IMAGENET_STD) / 3,)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the fine-tuning config ('smoke' shrinks it for tests)."""
  parsed = config_string.parse(arg, 'finetune_resnet18_digits.py')
  config = default.get_config()

  # Data.
  config.dataset.name = 'digits'
  config.dataset.num_classes = 10
  config.input.image_size = 32
  config.input.channels = 1
  config.input.mean, config.input.std = GRAY_MEAN, GRAY_STD
  config.input.crop_padding = 2
  config.input.random_flip = False  # a mirrored digit is another symbol

  # Model and weights: all but the new 10-way `fc` from the file.
  config.model.name = 'resnet18'
  config.init_from = ''  # --config.init_from=resnet18.safetensors
  config.init_from_strict = False

  # Optimizer: SGD with momentum at a tenth of the from-scratch rate for this batch.
  config.batch_size = 64
  config.optimizer = 'sgd'
  config.learning_rate = 0.01
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.weight_decay_mask = 'kernels'

  # Schedule: 10 epochs of 22 steps, cosine to 0.
  config.num_epochs = 10.0
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 0.0

  # Eval, predict and runtime.
  config.eval_batch_size = 120
  config.log_every_steps = 22
  config.predict.class_names = 'index'

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
