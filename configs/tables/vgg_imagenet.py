"""VGG paper, ImageNet: Table 3 (single test scale), beside torchvision's VGGs.

Simonyan and Zisserman 2014, "Very deep convolutional networks for large-scale image
recognition" (arXiv 1409.1556), Table 3: top-1 / top-5 validation error of
configurations A (VGG-11), A-LRN, B (13), C (16 with 1x1 convolutions), D (16) and E
(19) trained at scale S=256 and tested densely at the single scale Q=256 (Table 3 also
has scale-jittered training, 25.6% for D and 25.5% for E: context below). torchvision's
weights of A, B, D, E and their BatchNorm variants, published with one centre crop, are
the second column; the BatchNorm nets are not in the paper.

  python main.py --mode=table --config=configs/tables/vgg_imagenet.py \
      --workdir=/tmp/vgg_imagenet --config.table.overrides=dataset.data_dir=$TFDS_DATA_DIR

Ours is one centre view at 224 with the recipes of configs/imagenet_vgg.py. Time: 74
(paper) or 90 (BatchNorm) epochs of 1.28M images each: days on 8 GPUs.
"""

from configs.tables import IMAGENET, TORCHVISION, row, table, torchvision

VGG = 'configs/imagenet_vgg.py'
SOURCE = (
  'Simonyan and Zisserman 2014, arXiv 1409.1556, Table 3: ILSVRC-2012 '
  'validation error at a single test scale (train S=256, test Q=256), %'
)


def get_config():
  """Table 3's configurations and torchvision's BatchNorm VGGs."""
  return table(
    'vgg_imagenet',
    'VGG paper, ImageNet (Table 3): top-1 validation error',
    (
      row('VGG-11 (A)', VGG, '11', published=29.6, top5=10.4, also=(torchvision(69.020, 88.628),)),
      row('VGG-11 A-LRN', VGG, '11_lrn', published=29.7, top5=10.5),
      row('VGG-13 (B)', VGG, '13', published=28.7, top5=9.9, also=(torchvision(69.928, 89.246),)),
      row('VGG-16 (C)', VGG, '16_c', published=28.1, top5=9.4),
      row('VGG-16 (D)', VGG, '16', published=27.0, top5=8.8, also=(torchvision(71.592, 90.382),)),
      row('VGG-19 (E)', VGG, '19', published=27.3, top5=9.0, also=(torchvision(72.376, 90.876),)),
      row('VGG-11 BN', VGG, '11_bn', also=(torchvision(70.370, 89.810),)),
      row('VGG-13 BN', VGG, '13_bn', also=(torchvision(71.586, 90.374),)),
      row('VGG-16 BN', VGG, '16_bn', also=(torchvision(73.360, 91.516),)),
      row('VGG-19 BN', VGG, '19_bn', also=(torchvision(74.218, 91.842),)),
    ),
    dataset=IMAGENET,
    source=SOURCE,
    published_label='paper (Q=256)',
    chart_reference=(TORCHVISION,),
    context=(
      ('VGG-16 (D), trained with scale jitter S in [256; 512]', 25.6, SOURCE),
      ('VGG-19 (E), trained with scale jitter S in [256; 512]', 25.5, SOURCE),
    ),
  )
