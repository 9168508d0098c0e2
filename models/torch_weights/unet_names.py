"""milesial/Pytorch-UNet's names for our same-padding U-Net (`unet_same`).

  inc/conv1, bn1, conv2, bn2        inc.double_conv.0, .1, .3, .4 (conv, BN, ReLU, ...)
  down{k}/conv1 ...                 down{k}.maxpool_conv.1.double_conv.0 ...
  up{k}/up                          up{k}.up (ConvTranspose2d: IOHW -> HWIO)
  up{k}/conv/conv1 ...              up{k}.conv.double_conv.0 ...
  outc                              outc.conv

BatchNorm eps 1e-5 in both. The paper's valid U-Net (`unet`: no BatchNorm, cropping)
has no PyTorch release to follow and no mapping.
"""

from models.torch_weights import layouts
from models.torch_weights.naming import Family, WeightsError

DOUBLE_CONV = {'conv1': '0', 'bn1': '1', 'conv2': '3', 'bn2': '4'}


def _module_name(model, path) -> str:
  if model.padding != 'same' or not model.batch_norm:
    raise WeightsError(
      'only the same-padding U-Net with BatchNorm (unet_same) has '
      "PyTorch weights to convert (milesial's)"
    )
  top, *rest = path
  if top == 'outc':
    return 'outc.conv'
  if rest == ['up']:
    return f'{top}.up'
  inner = f'double_conv.{DOUBLE_CONV[rest[-1]]}'
  if top.startswith('down'):
    return f'{top}.maxpool_conv.1.{inner}'
  if top.startswith('up'):
    return f'{top}.conv.{inner}'
  return f'{top}.{inner}'  # inc


FAMILY = Family(
  'milesial/Pytorch-UNet',
  _module_name,
  lambda model: {f'up{k}.up': layouts.ConvTranspose() for k in range(1, model.depth + 1)},
)
