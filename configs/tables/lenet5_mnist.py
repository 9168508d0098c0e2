"""LeNet-5 paper, MNIST: test error without and with distortions.

LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based learning applied to document
recognition" (Proc. IEEE), section III.C and Fig. 9: LeNet-5 (its RBF output layer,
model `lenet5`) reaches 0.95% test error on the 10,000 MNIST test digits, and 0.8% when
the training set is augmented with random distortions (translations, scaling,
squeezing, shearing). Here the distortions are random translations of up to 2 pixels
only (`input.crop_padding=2`). Our softmax-output twin (`lenet5_softmax`, the default
job's network) has nothing published.

MNIST comes from the TFDS catalog: prepare it where there is network (`tfds build
mnist`) or let the runs download it:

  python main.py --mode=table --config=configs/tables/lenet5_mnist.py \
      --workdir=/tmp/lenet5_mnist --config.table.overrides=dataset.download=True

Time (estimated, not measured here): 20 epochs of 60,000 images per seed; LeNet-5's
12 epochs on Fashion-MNIST took 3-5 minutes on a 2-core CPU (README).
"""

from configs.tables import row, table

MNIST = 'configs/mnist_lenet5.py'
SOURCE = 'LeCun et al. 1998, Proc. IEEE 86(11), section III.C and Fig. 9: MNIST test error, %'
RBF = (('model.name', 'lenet5'),)
SEEDS = (0, 1, 2)


def get_config():
  """LeNet-5 with the paper's output layer and with softmax, with and without shifts."""
  return table(
    'lenet5_mnist',
    'LeNet-5, MNIST: test error',
    (
      row('LeNet-5', MNIST, overrides=RBF, seeds=SEEDS, published=0.95),
      row(
        'LeNet-5, distortions',
        MNIST,
        overrides=RBF + (('input.crop_padding', 2),),
        seeds=SEEDS,
        published=0.8,
        chart=False,
      ),
      row('LeNet-5 (softmax output)', MNIST, seeds=SEEDS),
    ),
    dataset='MNIST (10,000 test images)',
    source=SOURCE,
    metric_label='test error (%)',
    published_label='paper',
  )
