"""ResNet paper, ImageNet: Table 3 (10-crop validation error), beside torchvision.

He, Zhang, Ren and Sun 2015, "Deep residual learning for image recognition" (arXiv
1512.03385): Table 3's top-1 / top-5 error of 10-crop testing on the ILSVRC-2012
validation set for the plain nets and the ResNets (Table 2's plain-18 and ResNet-18 have
no top-5), with ResNet-34's three shortcut options (A: zero-padding, B: projections where
the shape changes, C: projections everywhere). The paper's 50/101/152 put the stride on
the first 1x1 of a Bottleneck (v1, config `_v1`); torchvision's weights, trained with
the recipe of configs/imagenet_resnet.py, are v1.5 (stride on the 3x3) and published
with one centre crop. The Caffe models of the paper, tested on one crop, are the third
column (KaimingHe/deep-residual-networks README).

  python main.py --mode=table --config=configs/tables/resnet_imagenet.py \
      --workdir=/tmp/resnet_imagenet --config.table.overrides=dataset.data_dir=$TFDS_DATA_DIR

Ours is one centre view (the input pipeline's resize to 224): compare it with the
single-crop columns; 10 crops lower the error by 1-2 points. Curves: Fig. 4, plain-18/34
(left) against ResNet-18/34 (right). Time: 90 epochs of 1.28M images each; days on
8 GPUs for the deepest, far beyond a CPU.
"""

from configs.tables import IMAGENET, TORCHVISION, reference, row, table, torchvision

RESNET = 'configs/imagenet_resnet.py'
SOURCE = (
  'He et al. 2015, arXiv 1512.03385, Table 3 (Table 2 for plain-18 and '
  'ResNet-18): ILSVRC-2012 validation error, 10-crop testing, %'
)
CAFFE = 'Caffe models (1 crop)'
CAFFE_SOURCE = (
  "KaimingHe/deep-residual-networks README: the paper's models, "
  'single-crop (224x224) validation error'
)


def _caffe(top1, top5):
  return reference(CAFFE, top1, top5, CAFFE_SOURCE)


def get_config():
  """Table 3's networks and torchvision's v1.5 ResNets."""
  return table(
    'resnet_imagenet',
    'ResNet paper, ImageNet (Table 3): top-1 validation error',
    (
      row('plain-18', RESNET, 'plain18', published=27.94, curves=('plain',)),
      row('plain-34', RESNET, 'plain34', published=28.54, top5=10.02, curves=('plain',)),
      row(
        'ResNet-18',
        RESNET,
        '18',
        published=27.88,
        also=(torchvision(69.758, 89.078),),
        curves=('ResNet',),
      ),
      row(
        'ResNet-34 A',
        RESNET,
        '34',
        overrides=(('model.shortcut', 'A'),),
        published=25.03,
        top5=7.76,
        chart=False,
      ),
      row(
        'ResNet-34 B',
        RESNET,
        '34',
        published=24.52,
        top5=7.46,
        also=(torchvision(73.314, 91.420),),
        curves=('ResNet',),
      ),
      row(
        'ResNet-34 C',
        RESNET,
        '34',
        overrides=(('model.shortcut', 'C'),),
        published=24.19,
        top5=7.40,
        chart=False,
      ),
      row('ResNet-50', RESNET, '50_v1', published=22.85, top5=6.71, also=(_caffe(24.7, 7.8),)),
      row('ResNet-101', RESNET, '101_v1', published=21.75, top5=6.05, also=(_caffe(23.6, 7.1),)),
      row('ResNet-152', RESNET, '152_v1', published=21.43, top5=5.71, also=(_caffe(23.0, 6.7),)),
      row('ResNet-50 v1.5', RESNET, '50', also=(torchvision(76.130, 92.862),)),
      row('ResNet-101 v1.5', RESNET, '101', also=(torchvision(77.374, 93.546),)),
      row('ResNet-152 v1.5', RESNET, '152', also=(torchvision(78.312, 94.046),)),
    ),
    dataset=IMAGENET,
    source=SOURCE,
    published_label='paper (10 crops)',
    chart_reference=(TORCHVISION, CAFFE),
    curve_panels=('plain', 'ResNet'),  # Fig. 4
    context=(('ResNet-152, multi-scale dense testing (Table 4)', 19.38, SOURCE),),
  )
