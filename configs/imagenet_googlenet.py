r"""GoogLeNet on ImageNet (Szegedy et al. 2014, "Going deeper with convolutions",
arXiv 1409.4842, sections 5-7).

Config string `[paper][,smoke]`:
  (none)  `googlenet`: torchvision's network (BatchNorm eps 1e-3 after every conv, a 3x3
          kernel in the "5x5" branch, maxpool4 2x2/2, dropout 0.2), trained with its
          two auxiliary classifiers: 13,004,888 parameters (6,624,904 without them).
  paper   `googlenet_paper`: the paper's network (convs with bias, no BN, 5x5 kernels,
          LRN in the stem, maxpool4 3x3/2, dropout 0.4, aux heads with the 5x5/3 average
          pool): 13,378,280 parameters (6,998,552 without the aux heads).
  smoke   64x64 inputs (96 for `paper`, whose 5x5/3 aux pool needs >= 5x5 at 4a),
          batch 8 and 4 steps on a slice of the data: checks that the pipeline runs.

Run (8 devices):
  python main.py --config=configs/imagenet_googlenet.py:paper --workdir=/tmp/googlenet \
      --config.dataset.data_dir=$TFDS_DATA_DIR

Expected. The paper's ILSVRC 2014 top-5 error (section 7, Table 3) for one model is
10.07% with 1 crop, 9.15% with 10 crops and 7.89% with 144 crops; seven models reach
8.09 / 7.62 / 6.67%. This config evaluates one model on one view (the central 224 crop
of the image resized to 256), so 10.07% top-5 error (89.93% top-5 accuracy) is the
number to compare with. torchvision's weights (ported from the original model,
`transform_input=True`) score 69.778% top-1 and 89.530% top-5 on one 224 centre crop;
the BVLC Caffe replication, trained without the scale and photometric augmentation,
68.7% / 88.9%.

Recipe (section 6): asynchronous SGD with momentum 0.9, the learning rate decreased by
4% every 8 epochs, Polyak averaging of the final weights; each auxiliary loss weighted
0.3 (section 5); random crops of 8%-100% of the image area with aspect ratio in
[3/4, 4/3] and photometric distortions. The paper gives no base rate, batch, weight
decay or length; we take them from the BVLC replication (models/bvlc_googlenet/
solver.prototxt): lr 0.01 at batch 32, weight decay 2e-4 and none on biases, lr x0.96
every 320k iterations (8 epochs of 1.28M images at batch 32), 10M iterations (250
epochs). The step schedule below is exactly that: 31 boundaries, 8 epochs apart. For
8 devices the batch is 256 and, as Goyal et al. (arXiv 1706.02677) advise for a large
batch, the first 5 epochs warm up. Rule: peak lr = 0.01 x batch / 32, schedule in
epochs; at batch 32 (`--config.batch_size=32 --config.warmup_epochs=0`) it is the BVLC
solver. The paper's network starts from the BVLC initialisation (models/
googlenet.py) and sees its input scale: RGB minus the mean on 0-255 pixels.

A torchvision-style alternative for the BN network (its classification reference
recipe): `--config.learning_rate=0.1 --config.lr_batch=256 --config.weight_decay=1e-4
--config.num_epochs=90 --config.lr_boundaries_epochs='(30,60)' --config.lr_decay=0.1
--config.warmup_epochs=0`.

Inputs, streamed from the host (input_pipeline/stream.py): the paper's crops of 8%-100%
of the image area with aspect ratio in [3/4, 4/3], resized to 224, and a random
horizontal flip. Not expressible with the base config's fields: asynchronous training,
Polyak averaging, the photometric distortions, and the paper's 144-crop testing.
"""

import ml_collections

from configs import config_string, default, recipes

CAFFE_MEAN = (123.0 / 255, 117.0 / 255, 104.0 / 255)  # BVLC's BGR (104, 117, 123), in RGB
BVLC_BATCH, BVLC_LR = 32, 0.01


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `[paper][,smoke]`, e.g. '', 'paper', 'smoke', 'paper,smoke'.

  Returns:
    The ConfigDict (torchvision's network when `arg` is empty).
  """
  parsed = config_string.parse(arg, 'imagenet_googlenet.py', variants=('paper',))
  paper = parsed.variant == 'paper'
  config = default.get_config()

  # Data: section 6's crops of 8%-100% of the area, aspect ratio in [3/4, 4/3].
  recipes.imagenet_data(config)
  if paper:  # 0-255 pixels minus the mean image colour, as the Caffe replication
    config.input.mean = CAFFE_MEAN
    config.input.std = (1.0 / 255.0,) * 3

  # Model: Table 1, with the auxiliary classifiers of section 5 on 4a and 4d.
  config.model.name = 'googlenet_paper' if paper else 'googlenet'
  config.model.aux_logits = True
  if not paper:
    config.model.transform_input = False  # True only for torchvision's ported weights
  config.aux_loss_weight = 0.3  # section 5: each aux loss weighted by 0.3

  # Optimizer: BVLC's rate for its batch of 32, scaled linearly.
  config.batch_size = 256
  config.optimizer = 'sgd'
  config.learning_rate = BVLC_LR
  config.lr_batch = BVLC_BATCH
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 2e-4
  config.weight_decay_mask = 'kernels'  # BVLC: decay_mult 0 on biases

  # Schedule: lr x0.96 every 8 epochs (section 6) for 250 epochs; 5 warm-up epochs for
  # the large batch (Goyal et al.).
  config.num_epochs = 250.0
  config.num_train_steps = -1
  config.lr_schedule = 'step'
  config.lr_boundaries_epochs = tuple(float(e) for e in range(8, 250, 8))
  config.lr_decay = 0.96
  config.warmup_epochs = 5.0

  # Eval.
  config.eval_batch_size = 250  # divides the 50,000 validation images

  # Runtime.
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config, image_size=96 if paper else 64)
    config.warmup_epochs = 0.0
  return config
