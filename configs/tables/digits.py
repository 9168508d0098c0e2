"""A small table on the embedded digits: LeNet-5 and a CIFAR ResNet beside its plain twin.

The 1,797 8x8 handwritten digits that ship with scikit-learn (input_pipeline/digits.py:
1,437 train / 360 test images; one test image is 0.28 points), so the whole mechanism,
runs, seeds, report and figures, works on real data anywhere, with no network:

  python main.py --mode=table --config=configs/tables/digits.py --workdir=/tmp/digits_table

Experiments: the default job (LeNet-5, configs/digits_lenet5.py) and the degradation
experiment of the ResNet paper (He et al. 2015, Fig. 6) shrunk to this data
(configs/digits_resnet.py): ResNet-20 and plain-20 over three seeds each, and the
56-layer pair on one seed for the curves of a deeper net. Nothing is published for
these nets on this split, so the table has no paper column to compare with; it shows
ours (mean +- std over seeds) and the curves.

Time: 13 min 51 s on a 2-core CPU shared with other jobs (load 6-9; 623 s of CPU
time), about half that on an idle one (README, "Reproducing the tables").
"""

from configs.tables import row, table

LENET = 'configs/digits_lenet5.py'
RESNET = 'configs/digits_resnet.py'
SEEDS = (0, 1, 2)


def get_config():
  """The table: its experiments (nothing published to compare with)."""
  return table(
    'digits',
    'Embedded digits (8x8, 360 test images): test error',
    (
      row('LeNet-5', LENET, seeds=SEEDS),
      row('ResNet-20', RESNET, '20', seeds=SEEDS, curves=('ResNet',)),
      row('plain-20', RESNET, 'plain20', seeds=SEEDS, curves=('plain',)),
      row('ResNet-56', RESNET, '56', curves=('ResNet',)),
      row('plain-56', RESNET, 'plain56', curves=('plain',)),
    ),
    dataset='digits (360 test images)',
    curve_panels=('plain', 'ResNet'),
    source='none: no published results for these nets on this split',
    metric_label='test error (%)',
  )
