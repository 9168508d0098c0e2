"""`--mode=summary`: the per-layer table of the config's model, without data or memory."""

import ml_collections

from input_pipeline import preprocess
from train_lib import setup
from train_lib.modes import costs


def print_model_summary(config: ml_collections.ConfigDict) -> costs.Summary:
  """Prints the table for the config's model and input size; returns the costs.

  The last printed line is `total_params=<int> total_macs=<int>` (per example).
  """
  model = setup.create_model(config)
  if not (config.input.pad_to or config.input.image_size):
    raise ValueError('config.input.image_size or pad_to must fix the input size')
  shape = (1, *preprocess.model_input_shape(config.input))
  result = costs.summarize(model, shape)
  print(costs.format_summary(result), flush=True)
  return result
