"""torchvision's and timm's ResNet names (the same for the plain-stem models).

  conv1, bn1                      -> conv1, bn1
  layer1_0/conv1 ... /bn3         -> layer1.0.conv1 ... .bn3
  layer1_0/downsample_conv|bn     -> layer1.0.downsample.0|1
  fc                              -> fc

Both libraries use BatchNorm eps 1e-5, as models/resnet.py; timm's `resnet18`..
`resnet152` are v1.5 like torchvision's (stride on the 3x3).
"""

from models.torch_weights.naming import Family, dotted

SHORTCUT = {'downsample_conv': 'downsample.0', 'downsample_bn': 'downsample.1'}


def _module_name(model, path):
  del model
  return '.'.join(SHORTCUT.get(p) or dotted(p) for p in path)


FAMILY = Family('torchvision or timm resnet*', _module_name, lambda m: {})
