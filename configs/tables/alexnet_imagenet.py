"""AlexNet paper, ImageNet: one CNN on ILSVRC-2012 (Table 2), beside torchvision's AlexNet.

Krizhevsky, Sutskever and Hinton 2012, "ImageNet classification with deep convolutional
neural networks" (NIPS), Table 2: one CNN (the two-tower net of the paper, config
`original`) has 40.7% top-1 and 18.2% top-5 error on the ILSVRC-2012 validation set,
averaging the predictions of ten 224x224 patches (section 4.1). torchvision's
single-tower AlexNet ("one weird trick", 64-192-384-256-256 filters, no LRN, no groups)
publishes one centre crop.

  python main.py --mode=table --config=configs/tables/alexnet_imagenet.py \
      --workdir=/tmp/alexnet_imagenet --config.table.overrides=dataset.data_dir=$TFDS_DATA_DIR

Ours is one centre view (227 for the paper's net, 224 for torchvision's;
configs/imagenet_alexnet.py). Time: about 90 epochs of 1.28M images, a day or more on
one GPU.
"""

from configs.tables import IMAGENET, row, table, torchvision

ALEXNET = 'configs/imagenet_alexnet.py'
SOURCE = (
  'Krizhevsky et al. 2012, NIPS, Table 2: ILSVRC-2012 validation error of 1 CNN, '
  '10 patches averaged, %'
)


def get_config():
  """The paper's two-tower AlexNet and torchvision's."""
  return table(
    'alexnet_imagenet',
    'AlexNet, ImageNet: top-1 validation error',
    (
      row('AlexNet (paper, two towers)', ALEXNET, 'original', published=40.7, top5=18.2),
      row('AlexNet (torchvision)', ALEXNET, '', also=(torchvision(56.522, 79.066),)),
    ),
    dataset=IMAGENET,
    source=SOURCE,
    published_label='paper (1 CNN)',
    context=(
      ('5 CNNs (Table 2)', 38.1, SOURCE),
      ('1 CNN, ILSVRC-2010 test set (Table 1)', 37.5, 'Krizhevsky et al. 2012, NIPS, Table 1'),
    ),
  )
