"""xuebinqin/U-2-Net's names (model/u2net.py): ours are the same, '/' for '.'.

  stage1/rebnconvin/conv_s1, bn_s1    stage1.rebnconvin.conv_s1, .bn_s1
  stage5d/rebnconv4d/...              stage5d.rebnconv4d....
  side1 .. side6, outconv             side1 .. side6, outconv

BatchNorm eps 1e-5 in both; u2net.pth and u2netp.pth convert with num_classes=1.
"""

from models.torch_weights.naming import Family

FAMILY = Family('xuebinqin/U-2-Net', lambda model, path: '.'.join(path), lambda model: {})
