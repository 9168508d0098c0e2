"""The base configuration every experiment starts from.

Field names follow flax's ImageNet example. Experiment files call `get_config()` and
change what their paper's recipe says; every field the library reads is defined here,
so nothing has a hidden default in the trainer.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the base configuration."""
  config = ml_collections.ConfigDict()

  # Data.
  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = 'digits'  # a builder of ours (input_pipeline) or a TFDS name
  config.dataset.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.dataset.train_split = 'train'
  config.dataset.eval_split = 'test'
  config.dataset.download = False  # let TFDS download catalog datasets
  config.dataset.manual_dir = ''  # our builders' local files ('': the builder's default)
  config.dataset.num_classes = 10  # checked against the dataset's label feature
  # Preprocessing, done in JAX on the device (input_pipeline/preprocess.py).
  config.input = ml_collections.ConfigDict()
  config.input.image_size = 32  # resize to this square size; 0 keeps the stored size
  config.input.channels = 3  # of the stored images (for --mode=summary and bench)
  config.input.resize_method = 'bilinear'
  config.input.pad_to = 0  # zero-pad (centred) to this square size after resizing
  config.input.mean = (0.0,)  # per channel, on the [0, 1] scale
  config.input.std = (1.0,)
  # Training augmentation, in JAX inside the step: pad by this many pixels and crop back
  # to image_size at a random offset (0 = off); random horizontal flip.
  config.input.crop_padding = 0
  config.input.random_flip = False

  # Model.
  config.model = ml_collections.ConfigDict()
  config.model.name = 'lenet5'  # models/registry.py; other fields go to the module
  config.aux_loss_weight = 0.3  # for models that sow auxiliary logits (GoogLeNet)

  # Optimizer.
  config.optimizer = 'sgd'  # sgd | adamw
  config.learning_rate = 0.1  # peak, for the global batch
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 0.0
  config.weight_decay_mask = 'kernels'  # all | kernels (no decay on biases and norms)
  # Schedule.
  config.lr_schedule = 'cosine'  # constant | cosine | step
  config.warmup_epochs = 0.0
  config.lr_boundaries_epochs = ()  # step schedule: epochs at which lr *= lr_decay
  config.lr_decay = 0.1
  config.batch_size = 128  # global, over all devices of all processes
  config.num_epochs = 10.0
  config.num_train_steps = -1  # -1: from num_epochs

  # Eval.
  config.eval_batch_size = 256
  config.eval_every_steps = -1  # -1: once per epoch

  # Runtime.
  config.seed = 0
  config.half_precision = False  # compute in half precision; params stay float32
  # bfloat16 (TPUs, NVIDIA Ampere and newer) needs no loss scaling; float16 (older
  # GPUs) trains with dynamic loss scaling (train_lib/steps.py).
  config.half_precision_dtype = 'bfloat16'  # bfloat16 | float16
  # Persistent XLA compilation cache, so a restarted run loads its compiled steps:
  # '' = <parent of workdir>/.jax_cache (none when there is no --workdir), 'none' = off,
  # or a directory (train_lib/compilation.py).
  config.compilation_cache_dir = ''
  # Train steps per compiled call (jax.lax.scan over stacked batches), for tiny models
  # whose step is shorter than its dispatch; only --mode=bench runs more than 1 so far.
  config.steps_per_call = 1
  # --mode=bench: steps run untimed after compiling, then steps timed.
  config.bench_warmup_steps = 5
  config.bench_steps = 50
  config.log_every_steps = 50
  config.checkpoint_every_steps = -1  # -1: once per epoch
  config.keep_checkpoints = 3  # the newest ones
  config.keep_best_checkpoints = 1  # and the best ones by best_metric at evaluation
  config.best_metric = 'accuracy'
  config.best_mode = 'max'  # max | min
  return config


def shrink_for_smoke_test(config: ml_collections.ConfigDict,
                          image_size: int | None = None) -> ml_collections.ConfigDict:
  """The `smoke` modifier: 64 training and 16 eval examples, batch 8, 4 steps.

  The learning rate is scaled linearly with the batch (Goyal et al. 2017), as the
  recipes scale it.
  """
  first = lambda split, n: f"{split.split('[')[0]}[:{n}]"  # noqa: E731
  config.dataset.train_split = first(config.dataset.train_split, 64)
  config.dataset.eval_split = first(config.dataset.eval_split, 16)
  if image_size:
    config.input.image_size = image_size
  config.learning_rate *= 8 / config.batch_size
  config.batch_size = config.eval_batch_size = 8
  config.num_train_steps = 4
  config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 2
  return config
