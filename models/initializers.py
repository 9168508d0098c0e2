"""Initialisers that several families share, each with the paper or library it follows.

A family's own scheme (AlexNet's N(0, 0.01), GoogLeNet's Caffe "xavier", HRNet's
N(0, 0.001) for dense heads) stays in its file, beside the text that cites it.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

# He, Zhang, Ren and Sun 2015, "Delving deep into rectifiers" (arXiv 1502.01852),
# section 2.2: N(0, 2 / n) keeps the variance of a ReLU network's signal constant.
# n = fan-out (eq. 14, the backward pass), as torchvision's ResNet and VGG
# (`kaiming_normal_(mode='fan_out', nonlinearity='relu')`) and HRNet's cls_hrnet.py.
he_normal_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
# n = fan-in (eq. 10, the forward pass): U-Net's sqrt(2 / N) (Ronneberger et al., section 3).
he_normal_fan_in = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')

# PyTorch's default weight of `nn.Conv2d` and `nn.Linear` (their `reset_parameters`):
# kaiming_uniform_(a=sqrt(5)), i.e. U(+-sqrt(3) * sqrt(1/3) / sqrt(fan_in)) =
# U(+-1/sqrt(fan_in)), which is variance scaling by 1/3 with a uniform draw. The
# families that keep PyTorch's defaults (torchvision's AlexNet, the ResNet and HRNet
# classifiers, U^2-Net) use it.
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def torch_bias_init(fan_in: int):
  """PyTorch's default bias of `nn.Conv2d` and `nn.Linear`: U(+-1/sqrt(fan_in)).

  Args:
    fan_in: the layer's inputs per output (kh * kw * in_channels, or in_features); the
      bias initialiser does not see the kernel, so the caller passes it.
  """
  limit = fan_in**-0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -limit, limit)

  return init
