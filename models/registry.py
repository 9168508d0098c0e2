"""The model registry: `config.model.name` -> flax.linen Module class.

Each family file exports a `MODELS` dict of its variants; this file merges them, so the
set of valid names is written out in one place.

Errors: an unknown name, or fields the model does not take, raise ValueError (the
message names the model); a module's own checks (sizes, options) raise ValueError when
it is first initialised or traced.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from models import alexnet, deconvnet, googlenet, hrnet, lenet, resnet, u2net, unet, vgg

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
  model_config: ml_collections.ConfigDict, *, num_classes: int, dtype: Any = jnp.float32
) -> nn.Module:
  """Builds the model named by `model_config.name`.

  Args:
    model_config: `config.model`; `name` selects the class, the other fields are passed
      to its constructor.
    num_classes: number of output classes (from the dataset).
    dtype: the compute dtype (float32, bfloat16 or float16); parameters are float32.

  Returns:
    The flax Module.

  Raises:
    ValueError: an unknown name (the message lists the valid ones), or a field that
      the model does not have.
  """
  kwargs = dict(model_config.to_dict())
  name = kwargs.pop('name')
  if name not in MODELS:
    raise ValueError(f"unknown model '{name}'; valid names: {', '.join(sorted(MODELS))}")
  try:
    return MODELS[name](num_classes=num_classes, dtype=dtype, param_dtype=jnp.float32, **kwargs)
  except TypeError as e:  # a field the class does not have
    raise ValueError(f"model '{name}': {e}") from None
