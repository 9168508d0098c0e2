r"""ResNets on ImageNet (He, Zhang, Ren and Sun 2015, arXiv 1512.03385, Table 1).

Models: ResNet-18/34/50/101/152 with projection shortcuts where the shape changes
(option B of section 3.3) and the plain-18/34 nets of the degradation experiment
(Table 2), BatchNorm after every convolution, He-normal initialization.

Recipe: torchvision's reference, which is the paper's with a fixed step schedule in
place of "divide by 10 when the error plateaus": SGD with momentum 0.9, batch 256,
learning rate 0.1, weight decay 1e-4 on every parameter, 90 epochs, learning rate x0.1
at epochs 30 and 60. Rule: peak lr = 0.1 x batch / 256, schedule in epochs. Training
inputs: an Inception-style random resized crop (8%-100% of the area, aspect ratio
3/4-4/3) to 224x224 and a random horizontal flip; evaluation: the shorter side resized
to 256 and the central 224x224 crop; both normalized by the ImageNet mean and standard
deviation.
The images stream from the host (tf.data decodes only each crop's part of the JPEG;
input_pipeline/stream.py), flip and normalization run in the step.

Config string `DEPTH[_v1][,scale][,tencrop][,smoke]`:
  DEPTH   18 | 34 | 50 | 101 | 152 | plain18 | plain34
  _v1     the paper's Bottleneck (stride on the first 1x1) instead of torchvision's
          v1.5 (stride on the 3x3); a no-op for 18/34 and the plain nets, whose
          BasicBlocks carry the stride on their first 3x3 either way.
  scale   the paper's scale augmentation (section 3.4) instead of the random resized
          crop: the shorter side resized to S, uniform in [256, 480], a random 224 crop
          and a flip (no colour augmentation).
  tencrop the paper's 10-crop testing: the 4 corner and the central 224 crops of the
          256-resized image and their mirror images, logits averaged.
  smoke   64x64 inputs, batch 8 and 4 steps on a slice of the data: checks that the
          pipeline runs, trains nothing.

Run (8 devices; ImageNet prepared by TFDS from the two ILSVRC2012 archives, once):
  python main.py --config=configs/imagenet_resnet.py:50 --workdir=/tmp/resnet50 \
      --config.dataset.data_dir=$TFDS_DATA_DIR --config.dataset.manual_dir=$ARCHIVES
The paper's setting, compared with its Tables 2 and 3:
  python main.py --config=configs/imagenet_resnet.py:50_v1,scale,tencrop ...

Expected single-crop top-1 accuracy (torchvision V1 weights, this recipe, v1.5):
  ResNet-18 69.758, -34 73.314, -50 76.130, -101 77.374, -152 78.312.
The paper's 10-crop top-1 error (Tables 2 and 3, v1): plain-18 27.94, plain-34 28.54,
ResNet-18 27.88, ResNet-34 (B) 24.52, -50 22.85, -101 21.75, -152 21.43.
The paper's 10-crop figures are from models trained with its scale augmentation and
colour augmentation (Krizhevsky et al.'s PCA lighting), which is not implemented here;
the paper's 10-crop testing averages softmax scores, this one logits.
"""

import ml_collections

from configs import config_string, default, recipes

DEPTHS = ('18', '34', '50', '101', '152', 'plain18', 'plain34')
VARIANTS = DEPTHS + tuple(d + '_v1' for d in DEPTHS)
MODIFIERS = ('scale', 'tencrop', 'smoke')
PAPER_SCALES = (256, 480)  # section 3.4: shorter side sampled in [256, 480]


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config for `arg` (see the module docstring).

  Args:
    arg: `DEPTH[_v1][,scale][,tencrop][,smoke]`, e.g. '50', 'plain34', '101_v1,smoke'.

  Returns:
    The ConfigDict ('50' when `arg` is empty).
  """
  parsed = config_string.parse(
    arg, 'imagenet_resnet.py', variants=VARIANTS, default='50', modifiers=MODIFIERS
  )
  depth, v1 = parsed.variant.removesuffix('_v1'), parsed.variant.endswith('_v1')
  config = default.get_config()

  # Data.
  recipes.imagenet_data(config)
  if 'scale' in parsed:
    config.input.train_crop = 'scale_jitter'
    config.input.shorter_side_range = PAPER_SCALES
  if 'tencrop' in parsed:
    config.input.eval_crop = 'ten_crop'

  # Model: Table 1; option B shortcuts, or none for the plain nets.
  config.model.name = depth if depth.startswith('plain') else f'resnet{depth}'
  config.model.stride_on_3x3 = not v1
  config.model.zero_init_residual = False  # the paper: every BN scale starts at 1

  # Optimizer and schedule: torchvision's reference, 0.1 x batch / 256, in epochs.
  recipes.torchvision_imagenet_recipe(config)

  # Eval and runtime.
  config.eval_batch_size = 256
  config.log_every_steps = 100

  if 'smoke' in parsed:
    default.shrink_for_smoke_test(config, image_size=64)
  return config
