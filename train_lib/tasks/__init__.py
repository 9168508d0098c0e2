"""Tasks: what a run optimises, measures and draws; the loop (train.py, steps.py) is one.

`config.task` picks one (a file each): 'classification', 'segmentation', 'saliency'
(dense.py: what the two dense ones share); 'keypoints' is reserved (pose heatmaps).

A task declares the labels the input pipeline reads (`labels`: 'class' or 'mask'),
checks the dataset's classes against the config (`check_classes`), and supplies: the
model inputs and targets of a batch (`train_inputs`, `eval_inputs`), the loss, the
per-batch metric sums made on the device (`train_sums`, `eval_sums`; train sums always
hold loss, correct and count), their finalisation on the host (`finalize`), and the
pictures (`write_pictures`).
"""

import ml_collections

from train_lib.errors import UserError
from train_lib.tasks.classification import Classification
from train_lib.tasks.saliency import Saliency
from train_lib.tasks.segmentation import Segmentation

REGISTRY = {'classification': Classification, 'segmentation': Segmentation, 'saliency': Saliency}
TASKS = tuple(REGISTRY)
RESERVED = ('keypoints',)


def get_task(config: ml_collections.ConfigDict):
  """The task object of `config.task`."""
  if config.task in RESERVED:
    raise UserError(
      f"task '{config.task}' is not implemented yet; valid: {', '.join(TASKS)} (set --config.task)"
    )
  if config.task not in REGISTRY:
    raise UserError(f"unknown task '{config.task}'; valid: {', '.join(TASKS)} (set --config.task)")
  return REGISTRY[config.task](config)
