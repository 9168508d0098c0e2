"""torchvision's GoogLeNet names: ours are the same with '.' for the branch indices.

  conv1/conv, conv1/bn                 -> conv1.conv, conv1.bn
  inception3a/branch2_0/conv           -> inception3a.branch2.0.conv
  aux1/conv/bn, aux1/fc1 ...           -> aux1.conv.bn, aux1.fc1 ...
  fc                                   -> fc

BatchNorm eps is 1e-3 in both (torchvision's BasicConv2d). Our aux heads flatten in
PyTorch's order already, so their fc1 is a plain transpose. torchvision's released file
holds the aux heads' weights: convert it with `model.aux_logits=True` (the default of
configs/imagenet_googlenet.py) and `model.transform_input=True`, which torchvision
turns on with those weights and which models/googlenet.py implements.
"""

from models.torch_weights.naming import Family, dotted


def _module_name(model, path):
  del model
  return '.'.join(dotted(p) for p in path)


FAMILY = Family('torchvision googlenet', _module_name, lambda model: {})
