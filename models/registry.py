"""The model registry: `config.model.name` -> flax.linen Module class.

Each family file exports a `MODELS` dict of its variants; this file merges them, so the
set of valid names is written out in one place.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from models import alexnet, deconvnet, googlenet, hrnet, lenet, resnet, u2net, unet, vgg
from train_lib.errors import UserError

MODELS: dict[str, Any] = {
  **lenet.MODELS,
  **alexnet.MODELS,
  **vgg.MODELS,
  **googlenet.MODELS,
  **resnet.MODELS,
  **hrnet.MODELS,
  **unet.MODELS,
  **deconvnet.MODELS,
  **u2net.MODELS,
}


def create_model(
  model_config: ml_collections.ConfigDict, *, num_classes: int, half_precision: bool = False
) -> nn.Module:
  """Builds the model named by `model_config.name`.

  Args:
    model_config: `config.model`; `name` selects the class, the other fields are passed
      to its constructor.
    num_classes: number of output classes (from the dataset).
    half_precision: compute in bfloat16 (parameters stay float32).

  Returns:
    The flax Module.
  """
  kwargs = dict(model_config.to_dict())
  name = kwargs.pop('name')
  if name not in MODELS:
    raise UserError(
      f"unknown model '{name}'; valid names: {', '.join(sorted(MODELS))} (set --config.model.name)"
    )
  dtype = jnp.bfloat16 if half_precision else jnp.float32
  return MODELS[name](num_classes=num_classes, dtype=dtype, param_dtype=jnp.float32, **kwargs)
