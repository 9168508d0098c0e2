"""Same-padding U-Net on the Oxford-IIIT Pet trimaps (Parkhi, Vedaldi, Zisserman and
Jawahar 2012, "Cats and dogs"), TFDS `oxford_iiit_pet`.

Data: 3,680 train and 3,669 test photographs of 37 breeds with trimaps: pet,
background, and the uncertain border between them, which is left out of the loss and
the metrics (input_pipeline/dense_data.py): 2 classes. Images are resized to 128x128 on
the host (labels by nearest neighbour). TFDS must have the dataset prepared
(`tfds build oxford_iiit_pet`, needs network) or --config.dataset.download=True;
otherwise the run stops with an `error:` line.

Model: `unet_same` (models/unet.py), base width 32, four poolings, transposed-
convolution up-sampling; 3 channels in.

  python main.py --config=configs/pets_unet.py --workdir=/tmp/pets_unet

Recipe (ours; there is no paper for U-Net on the pets): Adam (betas 0.9, 0.999, eps
1e-8), learning rate 1e-3 with a cosine decay, batch 32, 40 epochs; random scales
0.75-1.25, shifts of up to 16 pixels and horizontal flips, applied alike to the image
and its trimap. Rule: the learning rate is the same at any batch, the schedule in
epochs.

Config string `[smoke]`: batch 8 and 4 steps on a slice of the data.
"""

import ml_collections

from configs import config_string, default, recipes


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config; `arg` is '' or 'smoke'."""
  parsed = config_string.parse(arg, 'pets_unet.py')
  config = default.get_config()
  config.task = 'segmentation'

  # Data.
  config.dataset.name = 'oxford_iiit_pet'
  config.dataset.num_classes = 2  # background, pet (the border is ignored)
  config.input.image_size = 128
  config.input.channels = 3
  recipes.normalize(config, 'imagenet2012')
  config.input.scale_range = (0.75, 1.25)
  config.input.crop_padding = 16
  config.input.random_flip = True

  # Model.
  config.model.name = 'unet_same'
  config.model.base_width = 32
  config.model.depth = 4
  config.model.up = 'transpose'

  # Optimizer.
  config.optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.batch_size = 32

  # Schedule.
  config.num_epochs = 40.0
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 0.0

  # Eval.
  config.eval_batch_size = 64
  config.eval_every_epochs = 5.0
  config.best_metric = 'mean_iou'

  # Runtime.
  config.log_every_steps = 50

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config)
  return config
