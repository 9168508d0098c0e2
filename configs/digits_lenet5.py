"""LeNet-5 (LeCun et al. 1998) on the embedded 8x8 handwritten digits: the default job.

The 1,797 UCI optdigits images that scikit-learn ships (input_pipeline/digits.py: fixed
stratified split, 1,437 train / 360 test), bilinearly resized to the paper's 32x32
input. Runs anywhere with no network:

  python main.py --config=configs/digits_lenet5.py --workdir=/tmp/digits_lenet5

Expected: ~99% test accuracy (one test image is 0.28 points) in under a minute on a
2-core CPU, compile included.

Recipe (ours): SGD with momentum 0.9, learning rate 0.05, batch 128, 40 epochs with a
cosine decay to 0. Rule: the learning rate is the same at any batch, the schedule in
epochs.

Config string `[smoke]`: batch 8 and 4 steps on a slice of the data.
"""

import ml_collections

from configs import config_string, default, recipes


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """LeNet-5 recipe for the digits; `arg` is '' or 'smoke'."""
  parsed = config_string.parse(arg, 'digits_lenet5.py')
  config = default.get_config()

  # Data: 8x8 uint8 digits -> 32x32, normalized with the training set's statistics.
  config.dataset.name = 'digits'
  config.input.image_size = 32
  config.input.channels = 1
  # Random translations of up to 2 pixels, as the paper's distortions (section III.C).
  config.input.crop_padding = 2
  recipes.normalize(config, 'digits')

  # Model: the paper's LeNet-5 C1..F6 (scaled tanh, C3 connection table, trainable
  # subsampling; 60,000 parameters) with a softmax output layer (850). The paper's RBF
  # output ('lenet5') reaches only ~96% here with plain SGD.
  config.model.name = 'lenet5_softmax'

  # Optimizer: SGD with momentum.
  config.optimizer = 'sgd'
  config.learning_rate = 0.05
  config.momentum = 0.9
  config.weight_decay = 0.0

  # Schedule: 40 epochs of 11 steps, cosine to 0.
  config.batch_size = 128
  config.num_epochs = 40.0
  config.lr_schedule = 'cosine'

  # Eval and runtime.
  config.eval_batch_size = 128
  config.log_every_steps = 22

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
