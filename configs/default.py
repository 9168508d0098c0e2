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
  # Local files a dataset is prepared from: our builders' ('': the builder's default),
  # and the archives of catalog datasets downloaded by hand (imagenet2012).
  config.dataset.manual_dir = ''
  config.dataset.num_classes = 10  # checked against the dataset's label feature
  # Dense tasks: every object label > 0 becomes 1 (foreground vs background).
  config.dataset.binary_mask = False
  # Preprocessing, done in JAX on the device (input_pipeline/preprocess.py).
  config.input = ml_collections.ConfigDict()
  config.input.image_size = 32  # resize to this square size; 0 keeps the stored size
  # Non-square inputs (e.g. Cityscapes 512x1024, COCO pose 256x192): the width, with
  # image_size the height; 0 = square. Read by --mode=summary/bench (model_input_shape)
  # and by the device-side resize (preprocess.normalize).
  config.input.image_width = 0
  config.input.channels = 3  # of the stored images (for --mode=summary and bench)
  config.input.resize_method = 'bilinear'
  config.input.pad_to = 0  # zero-pad (centred) to this square size after resizing
  config.input.mean = (0.0,)  # per channel, on the [0, 1] scale
  config.input.std = (1.0,)
  # Training augmentation, in JAX inside the step: pad by this many pixels and crop back
  # to image_size at a random offset (0 = off); random horizontal flip.
  config.input.crop_padding = 0
  config.input.random_flip = False
  # How the devices are fed (input_pipeline/feeds.py): 'device_resident' (the training
  # split lives on the devices as uint8; each step gathers and augments its batch),
  # 'host' (batches made on the host and prefetched: from the split decoded in memory,
  # or streamed by tf.data for large or variable-size datasets), 'auto' (device_resident
  # where the split fits in device_resident_max_mb and needs no host crop, else host).
  config.input.feed = 'auto'
  config.input.device_resident_max_mb = 1024.0  # per device: each holds a full copy
  config.input.host_cache_max_mb = 4096.0  # decoded splits / streamed records kept in RAM
  config.input.shuffle_buffer = 16_384  # streamed training examples, per process
  config.input.host_threads = 0  # tf.data threads per process (0: one per core)
  # Host crops (input_pipeline/crops.py) of images of any size to image_size. Train:
  # 'none' | 'random_resized' (Inception: area fraction in crop_area_range, aspect
  # ratio in crop_aspect_range) | 'scale_jitter' (VGG: shorter side rescaled to S,
  # uniform in shorter_side_range, random crop). Eval: 'none' | 'center' (shorter side
  # to eval_resize, central crop) | 'ten_crop' (the 4 corner and central crops and
  # their mirror images; the logits of the 10 views are averaged).
  config.input.train_crop = 'none'
  config.input.crop_area_range = (0.08, 1.0)
  config.input.crop_aspect_range = (3 / 4, 4 / 3)
  config.input.shorter_side_range = (256, 512)
  config.input.eval_crop = 'none'
  config.input.eval_resize = 256
  # Dense tasks only (input_pipeline/dense_augment.py): random rescaling by a factor in
  # [min, max] before the crop, applied alike to image and labels; how to pad to
  # pad_to: 'constant' (black) or 'reflect' (U-Net's mirrored overlap-tile input).
  config.input.scale_range = (1.0, 1.0)
  config.input.pad_mode = 'constant'

  # Task: classification | segmentation | saliency (keypoints: reserved). It supplies
  # the loss, the metrics and the pictures of the one loop.
  config.task = 'classification'
  config.ignore_label = 255  # dense tasks: pixels with this label count nowhere

  # Model.
  config.model = ml_collections.ConfigDict()
  config.model.name = 'lenet5'  # models/registry.py; other fields go to the module
  config.aux_loss_weight = 0.3  # for models that sow auxiliary logits (GoogLeNet)

  # Optimizer.
  config.optimizer = 'sgd'  # sgd | adamw
  config.learning_rate = 0.1  # the peak, at lr_batch when lr_batch > 0
  # Linear scaling rule (Goyal et al. 2017, arXiv 1706.02677): when > 0, the peak
  # learning rate is learning_rate * batch_size / lr_batch, so overriding batch_size
  # moves it; 0: learning_rate is the peak at any batch size.
  config.lr_batch = 0
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 0.0
  config.weight_decay_mask = 'kernels'  # all | kernels (no decay on biases and norms)

  # Schedule. Resolved at setup from the final config (after the command line's
  # overrides) and printed as one line, `schedule: steps=... epochs=... batch=...
  # peak_lr=... warmup_steps=... boundaries=...`. The length, the warm-up and the step
  # schedule's boundaries are each stated either in epochs or in steps:
  config.batch_size = 128  # global, over all devices of all processes
  config.num_epochs = 10.0  # the length when num_train_steps is -1
  config.num_train_steps = -1  # -1: from num_epochs
  config.lr_schedule = 'cosine'  # constant | cosine (to 0) | step
  config.warmup_epochs = 0.0  # linear warm-up from 0 to the peak; or:
  config.warmup_steps = 0
  config.lr_boundaries_epochs = ()  # step schedule: epochs at which lr *= lr_decay; or:
  config.lr_boundaries_steps = ()
  config.lr_decay = 0.1
  # When > 0, num_train_steps, warmup_steps and lr_boundaries_steps are iterations at
  # this batch size (a paper's schedule in iterations of its batch): at batch_size B
  # they scale by schedule_batch / B, so a run sees the same epochs at any batch.
  # 0: steps are steps at any batch size. Epochs are epochs either way.
  config.schedule_batch = 0

  # Eval.
  config.eval_batch_size = 256
  config.eval_every_steps = -1  # -1: every eval_every_epochs epochs
  config.eval_every_epochs = 1.0

  # Runtime.
  config.seed = 0
  config.half_precision = False  # compute in half precision; params stay float32
  # bfloat16 (TPUs, NVIDIA Ampere and newer) needs no loss scaling; float16 (older
  # GPUs) trains with dynamic loss scaling.
  config.half_precision_dtype = 'bfloat16'  # bfloat16 | float16
  # Persistent XLA compilation cache, so a restarted run loads its compiled steps:
  # '' = <parent of workdir>/.jax_cache (none when there is no --workdir), 'none' = off,
  # or a directory.
  config.compilation_cache_dir = ''
  # Train steps per compiled call (jax.lax.scan over stacked batches), for tiny models
  # whose step is shorter than its dispatch; only --mode=bench runs more than 1 so far.
  config.steps_per_call = 1
  # Speed settings per platform (README, Performance): XLA compiler options of the
  # steps ('auto' | 'default' | 'name=value,...') and the layers' backward passes
  # ('auto' | 'xla' | 'cpu', models/backward.py).
  config.system = ml_collections.ConfigDict()
  config.system.xla_options = 'auto'
  config.system.backward = 'auto'
  # --mode=bench: steps run untimed after compiling, then steps timed.
  config.bench_warmup_steps = 5
  config.bench_steps = 50
  config.log_every_steps = 50
  config.checkpoint_every_steps = -1  # -1: every checkpoint_every_epochs epochs
  config.checkpoint_every_epochs = 1.0
  config.keep_checkpoints = 3  # the newest ones
  config.keep_best_checkpoints = 1  # and the best ones by best_metric at evaluation
  config.best_metric = 'accuracy'
  config.best_mode = 'max'  # max | min

  # Pretrained weights (README, Pretrained weights).
  # A .safetensors file or a PyTorch state dict (.pth/.pt) of a model with a mapping
  # (models/torch_weights): --mode=convert imports it as DIR's checkpoint at step 0;
  # --mode=train does the same first when DIR holds no checkpoint yet (fine-tuning).
  config.init_from = ''
  # Every tensor of the file used and every parameter filled, shapes equal; False loads
  # what fits and leaves the rest at its initialisation (e.g. a new classifier head).
  config.init_from_strict = True
  # --mode=convert: also write DIR's checkpoint (--checkpoint) to this .safetensors file,
  # in the source library's names (torchvision/timm), loadable by its model.
  config.export_to = ''
  # --mode=predict: classify image files with DIR's checkpoint (or with init_from's
  # weights when DIR holds none), preprocessed as the evaluation:
  # input.eval_crop 'center' or 'ten_crop' resizes the shorter side to eval_resize and
  # takes the central crop; 'none' the device-side resize to image_size.
  config.predict = ml_collections.ConfigDict()
  config.predict.images = ''  # a glob of image files, e.g. 'photos/*.jpg'
  config.predict.output = ''  # .npz to save `logits` (N x classes) and `files` (sorted)
  # Class names: 'auto' (ImageNet's for 1000 classes, else indices), 'imagenet',
  # 'index', or a text file with one name per line.
  config.predict.class_names = 'auto'
  config.predict.top_k = 5

  # --mode=inspect: pictures of the newest checkpoint.
  config.inspect = ml_collections.ConfigDict()
  # Layers whose output maps to draw, comma-separated paths as --mode=summary prints
  # them (e.g. 'C1,C3' or 'conv1,layer1_0/conv1'); '' = the first two convolutions.
  config.inspect.layers = ''
  # An image file (PNG, JPEG) to look at, converted to input.channels and resized to
  # input.image_size; '' = the first example of dataset.eval_split.
  config.inspect.image = ''
  return config


def shrink_for_smoke_test(
  config: ml_collections.ConfigDict, image_size: int | None = None
) -> ml_collections.ConfigDict:
  """The `smoke` modifier: 64 training and 16 eval examples, batch 8, 4 steps.

  Checks that a config runs; trains nothing. With `image_size`, the inputs shrink to it
  and the host crops' sizes (eval_resize, shorter_side_range) in proportion. The peak
  learning rate follows the batch by the recipe's own rule (lr_batch), or linearly
  (Goyal et al. 2017) where the recipe has none; the 4 steps are steps at batch 8.
  """
  first = lambda split, n: f'{split.split("[")[0]}[:{n}]'  # noqa: E731
  config.dataset.train_split = first(config.dataset.train_split, 64)
  config.dataset.eval_split = first(config.dataset.eval_split, 16)
  if image_size:
    scale = lambda n: round(n * image_size / config.input.image_size)  # noqa: E731
    config.input.eval_resize = scale(config.input.eval_resize)
    config.input.shorter_side_range = tuple(scale(n) for n in config.input.shorter_side_range)
    config.input.image_size = image_size
  if not config.lr_batch:
    config.learning_rate *= 8 / config.batch_size
  config.batch_size = config.eval_batch_size = 8
  config.num_train_steps = 4
  config.schedule_batch = 0
  config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 2
  return config
