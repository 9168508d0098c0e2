"""HRNet-C, ImageNet: the HRNet-Image-Classification README table, beside timm.

Wang et al. 2019, "Deep high-resolution representation learning for visual
recognition" (arXiv 1908.07919), and its classification repository
HRNet/HRNet-Image-Classification, whose README lists for each net its parameters,
"GFLOPs" and top-1 / top-5 validation error of one 224 centre crop (100 epochs, the
recipe of configs/imagenet_hrnet.py). timm's ports of the same weights publish their
own top-1 (second column).

  python main.py --mode=table --config=configs/tables/hrnet_imagenet.py \
      --workdir=/tmp/hrnet_imagenet --config.table.overrides=dataset.data_dir=$TFDS_DATA_DIR

Time: 100 epochs of 1.28M images each, days on 4-8 GPUs for the wide nets.
"""

from configs.tables import IMAGENET, reference, row, table

HRNET = 'configs/imagenet_hrnet.py'
SOURCE = (
  'HRNet/HRNet-Image-Classification README (f760c98): ImageNet validation '
  'error, one 224 centre crop, %'
)
TIMM_SOURCE = (
  'timm results/results-imagenet.csv (aa4b585): top-1 accuracy of its ports of the same weights'
)

# Config string -> (name, README top-1 / top-5 error, timm top-1 accuracy).
NETS = (
  ('w18_small_v1', 'W18-Small-v1', 27.7, 9.3, 72.340),
  ('w18_small_v2', 'W18-Small-v2', 24.9, 7.6, 75.094),
  ('w18', 'W18', 23.2, 6.6, 76.770),
  ('w30', 'W30', 21.8, 5.8, 78.202),
  ('w32', 'W32', 21.5, 5.8, 78.452),
  ('w40', 'W40', 21.1, 5.5, 78.928),
  ('w44', 'W44', 21.1, 5.6, 78.890),
  ('w48', 'W48', 20.7, 5.5, 79.328),
  ('w64', 'W64', 20.5, 5.4, 79.458),
)


def get_config():
  """The README's nine HRNet-C nets."""
  return table(
    'hrnet_imagenet',
    'HRNet-C, ImageNet: top-1 validation error, one crop',
    tuple(
      row(
        f'HRNet-{name}',
        HRNET,
        arg,
        published=top1,
        top5=top5,
        also=(reference('timm (1 crop)', round(100 - timm, 3), None, TIMM_SOURCE),),
      )
      for arg, name, top1, top5, timm in NETS
    ),
    dataset=IMAGENET,
    source=SOURCE,
    published_label='README (1 crop)',
  )
