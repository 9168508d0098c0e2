"""ResNet paper, CIFAR-10: Table 6 (test error by depth) and Fig. 6 (training curves).

He, Zhang, Ren and Sun 2015, "Deep residual learning for image recognition" (arXiv
1512.03385), section 4.2: ResNets of 6n+2 layers with option-A shortcuts and their
plain twins, trained with the recipe of configs/cifar10_resnet.py (64k iterations of
128 images, lr 0.1 divided by 10 at 32k and 48k, augmentation: 4-pixel padding, crop and
flip), tested on the 10,000 test images.

  python main.py --mode=table --config=configs/tables/resnet_cifar10.py \
      --workdir=/tmp/resnet_cifar10 --config.table.overrides=dataset.data_dir=$TFDS_DATA_DIR

Table 6 gives the test error of each ResNet; ResNet-110's 6.43% is the best of 5 runs,
whose mean +- std is 6.61 +- 0.16 (the number compared here, over our 5 seeds). The
plain nets appear only as curves (Fig. 6, left: plain-20/32/44/56; middle: ResNet-20/
32/44/56/110; right: ResNet-110 and -1202): the deeper plain nets have the higher
training and test error, the deeper ResNets the lower. The second column is the
widely used PyTorch reproduction of akamaster/pytorch_resnet_cifar10 (its README).

Time: 64k steps each; ResNet-20 about 3 minutes on one H100 (goal of the README's
performance section); on a 2-core CPU a day and more per run.
"""

from configs.tables import reference, row, table

CIFAR = 'configs/cifar10_resnet.py'
SOURCE = 'He et al. 2015, arXiv 1512.03385, Table 6 (CIFAR-10 test error, %)'
AKAMASTER = (
  'akamaster/pytorch_resnet_cifar10 README, test error of its PyTorch reproduction (same recipe)'
)
DEEPEST = 'ResNet-110 and ResNet-1202'  # Fig. 6, right


def _resnet(depth, error, akamaster, seeds=(0,), curves=('ResNet',), **kwargs):
  also = (reference('akamaster', akamaster, source=AKAMASTER),) if akamaster else ()
  return row(
    f'ResNet-{depth}',
    CIFAR,
    str(depth),
    published=error,
    also=also,
    seeds=seeds,
    curves=curves,
    **kwargs,
  )


def get_config():
  """Table 6 and the nets of Fig. 6."""
  return table(
    'resnet_cifar10',
    'ResNet paper, CIFAR-10 (Table 6, Fig. 6): test error',
    (
      _resnet(20, 8.75, 8.27),
      _resnet(32, 7.51, 7.37),
      _resnet(44, 7.17, 6.90),
      _resnet(56, 6.97, 6.61),
      # Table 6: "6.43 (6.61+-0.16)", best (mean+-std) of 5 runs.
      row(
        'ResNet-110',
        CIFAR,
        '110',
        seeds=(0, 1, 2, 3, 4),
        published=6.61,
        source=SOURCE + ': mean +- std of 5 runs, 6.61 +- 0.16',
        also=(
          reference('best of 5', 6.43, source=SOURCE),
          reference('akamaster', 6.32, source=AKAMASTER),
        ),
        curves=('ResNet', DEEPEST),
      ),
      _resnet(1202, 7.93, None, curves=(DEEPEST,)),
      row('plain-20', CIFAR, 'plain20', curves=('plain',)),
      row('plain-32', CIFAR, 'plain32', curves=('plain',)),
      row('plain-44', CIFAR, 'plain44', curves=('plain',)),
      row('plain-56', CIFAR, 'plain56', curves=('plain',)),
    ),
    dataset='CIFAR-10 (10,000 test images)',
    source=SOURCE,
    curve_panels=('plain', 'ResNet', DEEPEST),  # Fig. 6, left to right
    metric_label='test error (%)',
    published_label='paper',
    context=(
      ('Maxout', 9.38, SOURCE),
      ('NIN', 8.81, SOURCE),
      ('DSN', 8.22, SOURCE),
      ('FitNet (19 layers, 2.5M parameters)', 8.39, SOURCE),
      ('Highway (19 layers, 2.3M parameters)', 7.54, SOURCE),
      ('Highway (32 layers, 1.25M parameters)', 8.80, SOURCE),
    ),
  )
