"""LeNet-5 (LeCun et al. 1998) on MNIST through the TFDS catalog.

The paper reports 0.95% test error without distortions and 0.8% with them (Fig. 9 and
section III.C). MNIST must be prepared in the TFDS data dir first (`tfds build mnist`
on a machine with network), or pass --config.dataset.download=True:

  python main.py --config=configs/mnist_lenet5.py --workdir=/tmp/mnist_lenet5

The 28x28 digits are zero-padded to the paper's 32x32 input (the paper centres them in
a 32x32 field). The 60,000 training images (47 MiB as uint8) live on the devices; each
step gathers its batch there (input_pipeline/resident.py). Expected: about 99.0-99.2%
test accuracy after 20 epochs.
"""

from configs import default


def get_config():
  """LeNet-5 recipe for MNIST."""
  config = default.get_config()

  # Data: 28x28 -> 32x32 by zero padding (crop_padding would move the digit as well).
  config.dataset.name = 'mnist'
  config.dataset.num_classes = 10
  config.input.image_size = 0
  config.input.pad_to = 32
  config.input.channels = 1
  config.input.mean = (0.1307,)
  config.input.std = (0.3081,)
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
  return config
