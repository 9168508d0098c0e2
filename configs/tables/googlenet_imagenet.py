"""GoogLeNet paper, ImageNet: one model, one crop (Table 3), beside its replications.

Szegedy et al. 2014, "Going deeper with convolutions" (arXiv 1409.4842), section 7,
Table 3: the top-5 error of one GoogLeNet tested on one crop is 10.07% (the paper
publishes no top-1). The BVLC Caffe replication of the paper's network (no scale,
aspect-ratio or photometric augmentation; center crop) and torchvision's BatchNorm
GoogLeNet (its weights ported from the original model; one centre crop) publish
top-1 and top-5.

  python main.py --mode=table --config=configs/tables/googlenet_imagenet.py \
      --workdir=/tmp/googlenet_imagenet \
      --config.table.overrides=dataset.data_dir=$TFDS_DATA_DIR

Ours is one centre view at 224 (configs/imagenet_googlenet.py); the paper's 10-crop,
144-crop and ensemble results are context. Time: 250 epochs (paper recipe via BVLC)
or 90 (torchvision recipe) of 1.28M images: days on 8 GPUs.
"""

from configs.tables import IMAGENET, reference, row, table, torchvision

GOOGLENET = 'configs/imagenet_googlenet.py'
SOURCE = (
  'Szegedy et al. 2014, arXiv 1409.4842, Table 3: ILSVRC 2014 classification, '
  'top-5 error of 1 model on 1 crop, %'
)
BVLC = reference(
  'BVLC replication (1 crop)',
  31.3,
  11.1,
  'BVLC/caffe models/bvlc_googlenet/readme.md: top-1 accuracy 68.7% '
  '(31.3% error), top-5 88.9% (11.1% error), validation set, center crop',
)


def get_config():
  """The paper's network and torchvision's."""
  return table(
    'googlenet_imagenet',
    'GoogLeNet, ImageNet: validation error, one crop',
    (
      row('GoogLeNet (paper)', GOOGLENET, 'paper', top5=10.07, also=(BVLC,)),
      row('GoogLeNet (torchvision)', GOOGLENET, '', also=(torchvision(69.778, 89.530),)),
    ),
    dataset=IMAGENET,
    source=SOURCE,
    published_label='paper (1 model, 1 crop)',
    context=(
      # Table 3 gives top-5 errors only; they are listed here as such.
      ('top-5: 1 model, 10 crops', 9.15, SOURCE),
      ('top-5: 1 model, 144 crops', 7.89, SOURCE),
      ('top-5: 7 models, 144 crops (the ILSVRC 2014 entry)', 6.67, SOURCE),
    ),
  )
