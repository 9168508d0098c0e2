"""torchvision's AlexNet and VGG names: layers numbered inside `features` and `classifier`.

AlexNet: conv1..conv5 -> features.0, 3, 6, 8, 10; fc6, fc7, fc8 -> classifier.1, 4, 6.
VGG: `features` holds, per entry of the configuration, a conv (+ BatchNorm in the `_bn`
models) + ReLU, or a max pool, one index each; fc6, fc7, fc8 -> classifier.0, 3, 6.
Both flatten the pooled map NCHW before fc6 (6x6x256 and 7x7x512), which the
FlattenedDense layout undoes. VGG's BatchNorm eps is 1e-5 in both libraries.
"""

from models import vgg
from models.torch_weights import layouts
from models.torch_weights.naming import Family, WeightsError

ALEXNET_NAMES = {
  'conv1': 'features.0',
  'conv2': 'features.3',
  'conv3': 'features.6',
  'conv4': 'features.8',
  'conv5': 'features.10',
  'fc6': 'classifier.1',
  'fc7': 'classifier.4',
  'fc8': 'classifier.6',
}
VGG_CLASSIFIER = {'fc6': 'classifier.0', 'fc7': 'classifier.3', 'fc8': 'classifier.6'}
# torchvision builds these configurations only (no A-LRN, no 1x1 convs of C).
TORCHVISION_VGG = ('A', 'B', 'D', 'E')


def vgg_feature_indices(config: str, batch_norm: bool) -> dict[str, str]:
  """Our conv{b}_{i} / bn{b}_{i} -> `features.<index>` in torchvision's `make_layers`."""
  names, index = {}, 0
  for b, layers in enumerate(vgg.CONFIGS[config], 1):
    for i, _ in enumerate(layers, 1):
      names[f'conv{b}_{i}'] = f'features.{index}'
      if batch_norm:
        names[f'bn{b}_{i}'] = f'features.{index + 1}'
      index += 3 if batch_norm else 2  # conv, [bn,] relu
    index += 1  # the block's max pool
  return names


def _vgg_module_name(model, path):
  if model.config not in TORCHVISION_VGG:
    raise WeightsError(
      f"torchvision has no VGG configuration '{model.config}' to convert; "
      'use vgg11, vgg13, vgg16, vgg19 or their _bn variants'
    )
  (name,) = path
  return {**vgg_feature_indices(model.config, model.batch_norm), **VGG_CLASSIFIER}[name]


def _alexnet_module_name(model, path):
  del model
  (name,) = path
  return ALEXNET_NAMES[name]


ALEXNET = Family(
  'torchvision alexnet',
  _alexnet_module_name,
  lambda model: {'classifier.1': layouts.FlattenedDense(256, 6, 6)},
)
VGG = Family(
  'torchvision vgg11..vgg19[_bn]',
  _vgg_module_name,
  lambda model: {'classifier.0': layouts.FlattenedDense(vgg.BLOCK_FEATURES[-1], 7, 7)},
)
