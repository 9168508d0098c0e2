"""Fashion-MNIST: the rows of the Fashion-MNIST README's benchmark that our zoo covers,
and the ResNet-20/56 vs plain-20/56 pair of the ResNet paper on this data.

Source of the published numbers: the "Benchmark" table of the README of
github.com/zalandoresearch/fashion-mnist (commit 02cf0676df94), user-submitted test
accuracies on the 10,000 test images that the maintainers note they have not
verified; each row below names its submitter and preprocessing. They are for similar
nets, not ours, so the accuracy-cost chart leaves them out. Our figure is the test
accuracy of the last `test` row of each run's metrics.jsonl, mean over `seeds`.

  python main.py --mode=table --config=configs/tables/fashion_mnist.py \
      --workdir=/tmp/fashion_mnist_table --config.table.only=lenet-5

Rows beyond LeNet-5 need a day or more each on a CPU: `cpu_hours` is our estimate of
one seed on a 2-core CPU, and `quick_rows()` the rows that fit in CPU_MINUTES_LIMIT.
"""

import ml_collections

from configs.tables import row, table

SOURCE = (
  'Fashion-MNIST README, "Benchmark" table, '
  'https://github.com/zalandoresearch/fashion-mnist (commit 02cf0676df94)'
)
CPU_MINUTES_LIMIT = 15  # a row whose one seed fits in this on a 2-core CPU is "quick"

# The README's rows we compare with: classifier -> (test accuracy %, submitter,
# preprocessing), as printed there.
PUBLISHED = {
  '2 Conv Layers with max pooling (Tensorflow) >300 epochs': (91.6, "Tensorflow's doc", 'None'),
  '2 Conv Layers net <100K parameters': (92.5, '@hardmaru', 'None'),
  'ResNet18': (
    94.9,
    'Kyriakos Efthymiadis',
    'Normalization, random horizontal flip, '
    'random vertical flip, random translation, random rotation.',
  ),
  'GoogleNet with cross-entropy loss': (93.7, '@Cenk Bircanoglu', 'None'),
  'VGG16 26M parameters': (93.5, '@QuantumLiu', 'None'),
  'WRN-28-10': (
    95.9,
    '@zhunzhong07',
    'standard preprocessing (mean/std '
    'subtraction/division) and augmentation (random crops/horizontal flips)',
  ),
}


def _published(key):
  accuracy, submitter, preprocessing = PUBLISHED[key]
  return accuracy, f'{SOURCE}: "{key}", {submitter}; preprocessing: {preprocessing}'


def _row(name, config, config_arg, seeds, published_key, cpu_hours, curves=()):
  published, source = _published(published_key) if published_key else (None, '')
  return row(
    name,
    config,
    config_arg,
    seeds=seeds,
    published=published,
    source=source,
    cpu_hours=cpu_hours,
    curves=curves,
  )


def get_config() -> ml_collections.ConfigDict:
  """The table: its experiments and the published numbers they are compared with."""
  # cpu_hours: LeNet-5 measured (3.4-5 minutes, README); the rest estimated from
  # ResNet-20's measured train throughput on the shared 2-core CPU (63 images/s at
  # batch 128, i.e. 2.5G forward multiply-accumulates/s) times each row's images seen
  # and multiply-accumulates per image (--mode=summary).
  rows = (
    # LeNet-5 (61,706 parameters: 2 conv layers with max pooling, 3 FC layers)
    # against the README's 2-conv net with max pooling; its <100K-parameter 2-conv
    # net is in `context`.
    _row(
      'LeNet-5',
      'configs/fashion_mnist_lenet5.py',
      '',
      (0, 1, 2),
      '2 Conv Layers with max pooling (Tensorflow) >300 epochs',
      0.08,
    ),
    # The degradation pair (He et al. 2015, Fig. 6 on CIFAR-10): nothing published
    # on Fashion-MNIST; 64k iterations each.
    _row('ResNet-20', 'configs/fashion_mnist_resnet.py', '20', (0,), None, 36.0, ('ResNet',)),
    _row('plain-20', 'configs/fashion_mnist_resnet.py', 'plain20', (0,), None, 36.0, ('plain',)),
    _row('ResNet-56', 'configs/fashion_mnist_resnet.py', '56', (0,), None, 110.0, ('ResNet',)),
    _row('plain-56', 'configs/fashion_mnist_resnet.py', 'plain56', (0,), None, 110.0, ('plain',)),
    # The zoo's ImageNet networks adapted to 28x28 (configs/fashion_mnist_zoo.py).
    _row('ResNet-18', 'configs/fashion_mnist_zoo.py', 'resnet18', (0,), 'ResNet18', 28.0),
    _row(
      'GoogLeNet',
      'configs/fashion_mnist_zoo.py',
      'googlenet',
      (0,),
      'GoogleNet with cross-entropy loss',
      23.0,
    ),
    _row('VGG-16', 'configs/fashion_mnist_zoo.py', 'vgg16', (0,), 'VGG16 26M parameters', 85.0),
  )
  return table(
    'fashion_mnist',
    'Fashion-MNIST test accuracy (10,000 test images)',
    rows,
    dataset='Fashion-MNIST (10,000 test images)',
    source=SOURCE,
    metric='accuracy',
    metric_label='test accuracy (%)',
    published_label='README benchmark',
    chart_published=False,
    # Published rows beyond our zoo, shown for scale only.
    context=tuple((k, *_published(k)) for k in ('2 Conv Layers net <100K parameters', 'WRN-28-10')),
  )


get_table = get_config  # the name the Fashion-MNIST tests use


def quick_rows(table: ml_collections.ConfigDict | None = None) -> tuple:
  """The rows whose one seed takes at most CPU_MINUTES_LIMIT on a 2-core CPU."""
  table = table or get_table()
  return tuple(r for r in table.rows if r.cpu_hours * 60 <= CPU_MINUTES_LIMIT)
