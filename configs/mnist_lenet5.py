"""LeNet-5 (LeCun et al. 1998) on MNIST through the TFDS catalog.

The paper reports 0.95% test error without distortions and 0.8% with them (Fig. 9 and
section III.C). MNIST must be prepared in the TFDS data dir first (`tfds build mnist`
on a machine with network), or pass --config.dataset.download=True:

  python main.py --config=configs/mnist_lenet5.py --workdir=/tmp/mnist_lenet5

The 28x28 digits are zero-padded to the paper's 32x32 input (the paper centres them in
a 32x32 field). The 60,000 training images (47 MiB as uint8) live on the devices; each
step gathers its batch there (input_pipeline/resident.py). Expected: about 99.0-99.2%
test accuracy after 20 epochs.

Recipe (ours, as configs/digits_lenet5.py): SGD with momentum 0.9, learning rate 0.05,
batch 128, 20 epochs with a cosine decay to 0. Rule: the learning rate is the same at
any batch, the schedule in epochs.

Config string `[smoke]`: batch 8 and 4 steps on a slice of the data.
"""

import ml_collections

from configs import config_string, default, recipes


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """LeNet-5 recipe for MNIST; `arg` is '' or 'smoke'."""
  parsed = config_string.parse(arg, 'mnist_lenet5.py')
  config = default.get_config()

  # Data: 28x28 -> 32x32 by zero padding (crop_padding would move the digit as well).
  config.dataset.name = 'mnist'
  config.dataset.num_classes = 10
  config.input.image_size = 0
  config.input.pad_to = 32
  config.input.channels = 1
  recipes.normalize(config, 'mnist')
  config.input.feed = 'device_resident'

  # Model: the paper's C1..F6 with a softmax output (see configs/digits_lenet5.py).
  config.model.name = 'lenet5_softmax'

  # Optimizer.
  config.optimizer = 'sgd'
  config.learning_rate = 0.05
  config.momentum = 0.9

  # Schedule: 20 epochs (the paper trains 20 passes), cosine to 0.
  config.batch_size = 128
  config.num_epochs = 20.0
  config.lr_schedule = 'cosine'

  # Eval and runtime.
  config.eval_batch_size = 1000
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
