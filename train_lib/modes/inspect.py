"""`--mode=inspect`: pictures of a trained network's kernels, feature maps and saliency.

On the newest checkpoint of DIR and one input (`config.inspect.image`, or the first
example of the eval split), writes into DIR/inspect/ (each PNG with its numbers in a
.npz of the same name) and prints the PNGs' paths:

- kernels.png: the first convolution's kernels, one tile per output channel (RGB for a
  3-channel input), each tile scaled from its own minimum to its own maximum, as the
  first-layer figure of the AlexNet paper (Krizhevsky et al. 2012, Fig. 3);
- features_PATH.png for each layer of `config.inspect.layers` (default: the first two
  convolutions): its output maps on one shared colour scale, and a printed table of
  shape, mean, std and fraction of zeros per layer;
- saliency.png: the input next to the gradient of the top class score with respect to
  it (Simonyan et al. 2013, section 3.1);
- classic_kernels.png: the input's responses to hand-made edge kernels (vertical and
  horizontal edge, Sobel, Scharr) above the first convolution's learned maps.
"""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import preprocess
from train_lib import setup, steps
from train_lib.errors import USER_ERRORS, UserError
from train_lib.modes import pictures as pic
from train_lib.modes import probes

MAX_MAPS = 64  # feature maps drawn per layer (the .npz holds all)
LEARNED_MAPS = 16  # first-convolution maps shown beside the classic kernels' responses
LIST_PATHS = 30  # layer paths an error message lists before referring to --mode=summary


def run(config: ml_collections.ConfigDict, workdir: str) -> list[str]:
  """Writes the pictures of DIR's newest checkpoint; prints and returns their paths.

  Raises:
    UserError: no checkpoint in DIR, a checkpoint of another model, an unreadable
      image, an unknown layer path.
  """
  checkpoint_dir = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not (os.path.isdir(checkpoint_dir) and any(n.isdigit() for n in os.listdir(checkpoint_dir))):
    raise UserError(
      f'no checkpoint in {checkpoint_dir}; train first (--mode=train with '
      'this --workdir) or import weights (--mode=convert)'
    )
  _check_same_model(config, workdir)

  s, state = setup.restore_from(config, workdir, 'latest', jax.local_devices()[:1])
  model, variables, step = s.model, steps.model_variables(state), int(state.step)
  image, source = _input_image(config)
  x = preprocess.normalize(jnp.asarray(image), config.input)
  return write_pictures(
    model,
    variables,
    x,
    config.inspect.layers,
    os.path.join(workdir, 'inspect'),
    f'{config.model.name}, step {step}',
    source,
  )


def write_pictures(
  model, variables, x, layers: str, out_dir: str, model_name: str, source: str
) -> list[str]:
  """Writes the pictures of `model` with `variables` on input `x`; prints their paths.

  Args:
    model: the flax Module.
    variables: its variables ('params', and 'batch_stats' where it has them).
    x: one input (1, H, W, C), normalized as the model sees it.
    layers: comma-separated layer paths for the feature maps ('' = the first two
      convolutions).
    out_dir: where the PNGs and .npz files go (created).
    model_name: the model (and checkpoint) for the titles.
    source: where the input came from, for the titles.

  Returns:
    The PNGs' paths.
  """
  calls = probes.list_calls(model, variables, x.shape)
  layers = _chosen_layers(layers, calls)
  conv = probes.first_conv(calls)
  if conv is None:
    raise UserError(f'{type(model).__name__} has no nn.Conv layer to draw kernels of')
  _, maps = probes.forward(model, variables, x, [conv.path, *layers])
  maps = {p: np.asarray(m[0]) for p, m in maps.items()}
  gradient, top, score = probes.saliency(model, variables, x)
  x = np.asarray(x[0])

  os.makedirs(out_dir, exist_ok=True)
  by_path = {c.path: c for c in calls}
  what = f'{model_name}, {source}'
  written = [
    _kernels(out_dir, model_name, conv.path, probes.kernel(variables['params'], conv.path))
  ]
  written += [_features(out_dir, what, by_path[p], maps[p]) for p in layers]
  written.append(_saliency(out_dir, what, x, gradient[0], top, score))
  written.append(
    _classic(out_dir, what, x, probes.classic_responses(x[None]), conv.path, maps[conv.path])
  )
  print(f'inspect: {what}; top class {top} (score {score:.4g})')
  print(format_stats({p: maps[p] for p in layers}, by_path))
  for path in written:
    print(path)
  return written


def _check_same_model(config, workdir) -> None:
  """A checkpoint restores only into the model that saved it: say so if DIR's differs."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f)
  now = json.loads(config.to_json())
  for section, fields in (
    ('model', None),
    ('dataset', ('num_classes',)),
    ('input', ('image_size', 'pad_to', 'channels')),
  ):
    a, b = saved.get(section, {}), now[section]
    for k in fields or sorted(set(a) | set(b)):
      if k in a and a.get(k) != b.get(k):
        raise UserError(
          f'{workdir} holds a run with {section}.{k}={a.get(k)!r}, not '
          f'{b.get(k)!r}; pass the --config it was trained with'
        )


def _builder(config):
  from input_pipeline import datasets

  return datasets.get_builder(config.dataset)


def _input_image(config) -> tuple[np.ndarray, str]:
  """One uint8 image (1, H, W, C) in the dataset's stored form, and where it came from.

  A file is converted to the config's channels and resized (bilinear) to
  `input.image_size` (x `image_width`), or to the dataset's stored size where the
  config keeps that;
  `preprocess.normalize` then pads and normalizes it as in training.
  """
  channels = config.input.channels
  if config.inspect.image:
    from PIL import Image

    if channels not in (1, 3):
      raise UserError(
        f'input.channels={channels}: --config.inspect.image reads '
        '1-channel (gray) or 3-channel (RGB) images only'
      )
    if config.input.image_size:
      height = config.input.image_size
      width = config.input.get('image_width', 0) or height
    else:
      height, width = _builder(config).info.features['image'].shape[:2]
    try:
      with Image.open(config.inspect.image) as f:
        img = f.convert('L' if channels == 1 else 'RGB').resize(
          (width, height), Image.Resampling.BILINEAR
        )
    except (OSError, ValueError) as e:
      raise UserError(
        f'cannot read --config.inspect.image={config.inspect.image}: {e}; give a PNG or JPEG file'
      ) from None
    pixels = np.asarray(img, np.uint8).reshape(height, width, channels)
    return pixels[None], os.path.basename(config.inspect.image)
  import tensorflow_datasets as tfds

  try:
    builder = _builder(config)
  except USER_ERRORS as e:
    raise UserError(f'{e}; or give an image with --config.inspect.image=FILE') from None
  split = config.dataset.eval_split
  ds = builder.as_dataset(
    split=split, shuffle_files=False, read_config=tfds.ReadConfig(try_autocache=False)
  )
  first = next(iter(tfds.as_numpy(ds.take(1))))
  label = int(first['label'])
  names = getattr(builder.info.features['label'], 'names', None)
  name = f" '{names[label]}'" if names and names[label] != str(label) else ''
  return first['image'][None], f'first {split} example (label {label}{name})'


def _chosen_layers(spec: str, calls) -> list[str]:
  """The layer paths of `config.inspect.layers` ('' = the first two convolutions)."""
  if not spec.strip():
    return probes.default_layers(calls)
  valid = [c.path for c in calls if c.output_shape is not None]
  chosen = [p.strip().strip('/') for p in spec.split(',') if p.strip()]
  for p in chosen:
    if p not in valid:
      listed = ', '.join(valid[:LIST_PATHS])
      more = (
        f', ... ({len(valid)} in all; --mode=summary prints every path)'
        if len(valid) > LIST_PATHS
        else ''
      )
      raise UserError(
        f"unknown layer '{p}' in --config.inspect.layers; valid paths: {listed}{more}"
      )
  return list(dict.fromkeys(chosen))


def format_stats(maps: dict[str, np.ndarray], calls) -> str:
  """One row per layer: path, type, shape (per example), mean, std, fraction of zeros."""
  header = ('layer', 'type', 'shape', 'mean', 'std', 'zeros')
  rows = [
    (
      p,
      calls[p].type,
      'x'.join(map(str, m.shape)),
      f'{m.mean():.4g}',
      f'{m.std():.4g}',
      f'{np.mean(m == 0):.2%}',
    )
    for p, m in maps.items()
  ]
  widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
  line = lambda r: '  '.join(  # noqa: E731
    r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(6)
  )
  return '\n'.join([line(header), *(line(r) for r in rows)])


def _file_name(path: str) -> str:
  return path.replace('/', '-')


def _kernels(out_dir, what, path, kernel) -> str:
  """kernels.png: one tile per output channel of the first convolution."""
  kh, kw, cin, cout = kernel.shape
  if cin == 3:
    tiles = np.stack([pic.scale01(kernel[..., o]) for o in range(cout)])
    how = 'RGB, the 3 input channels'
  else:
    k = kernel.mean(axis=2) if cin > 1 else kernel[:, :, 0]
    tiles = np.stack([pic.scale01(k[..., o]) for o in range(cout)])[..., None]
    how = 'gray' if cin == 1 else f'gray, the mean over its {cin} input channels'
  zoom = pic.zoom_for(max(kh, kw), 64)
  boxes = pic.save_sheet(
    os.path.join(out_dir, 'kernels.png'),
    f'{path}: {cout} kernels {kh}x{kw}x{cin} ({what})',
    pic.grid([pic.Tile(pic.gray(t), str(o)) for o, t in enumerate(tiles)], pic.grid_columns(cout)),
    zoom,
    notes=[
      f'One tile per output channel ({how}). Each tile is scaled on its own: its '
      'smallest weight is black, its largest white. The weights range from '
      f'{kernel.min():.3g} to {kernel.max():.3g}.'
    ],
    colorbar=pic.Colorbar(
      'gray', 0.0, 1.0, 'weight, per tile', ((0.0, 'tile min'), (1.0, 'tile max'))
    ),
  )
  return _save(out_dir, 'kernels', kernel=kernel, tiles=tiles, boxes=boxes, zoom=zoom)


def _features(out_dir, what, call, maps) -> str:
  """features_PATH.png: the layer's output maps on one colour scale."""
  lo, hi = float(maps.min()), float(maps.max())
  if maps.ndim == 3 and maps.shape[0] * maps.shape[1] > 1:
    shown = [maps[..., c] for c in range(min(maps.shape[-1], MAX_MAPS))]
    count = (
      f'{len(shown)} of {maps.shape[-1]} maps'
      if len(shown) < maps.shape[-1]
      else (f'{len(shown)} maps')
    )
    how = 'One tile per output channel'
  else:  # a vector (or anything else): row by row in one near-square tile
    v = maps.reshape(-1)
    rows = max(1, int(np.sqrt(v.size)))
    cols = -(-v.size // rows)
    shown = [np.concatenate([v, np.full(rows * cols - v.size, np.nan)]).reshape(rows, cols)]
    count = f'{v.size} values'
    how = f'The {v.size} values row by row as one {rows}x{cols} tile (blank: none)'
  side = max(shown[0].shape)
  zoom = pic.zoom_for(side, 96 if side >= 8 else 32)
  tiles = [
    pic.Tile(pic.colorize(m, 'viridis', lo, hi), str(c) if len(shown) > 1 else '')
    for c, m in enumerate(shown)
  ]
  name = 'features_' + _file_name(call.path)
  boxes = pic.save_sheet(
    os.path.join(out_dir, name + '.png'),
    f'{call.path} ({call.type}) output {"x".join(map(str, maps.shape))}: {count} ({what})',
    pic.grid(tiles, pic.grid_columns(len(tiles))),
    zoom,
    notes=[
      f'{how}, all on one colour scale from {lo:.3g} to {hi:.3g}. Mean '
      f'{maps.mean():.3g}, std {maps.std():.3g}, zeros {np.mean(maps == 0):.1%}.'
    ],
    colorbar=pic.Colorbar('viridis', lo, max(hi, lo + 1e-12), 'output value'),
  )
  return _save(out_dir, name, maps=maps, boxes=boxes, zoom=zoom)


def _input_tile(x) -> np.ndarray:
  """The model's input (normalized) as a picture: scaled from its min to its max."""
  return pic.gray(pic.scale01(x if x.shape[-1] == 3 else x.mean(-1)))


def _saliency(out_dir, what, x, gradient, top, score) -> str:
  """saliency.png: input, max over channels of |gradient|, signed gradient."""
  magnitude = np.abs(gradient).max(axis=-1)
  signed = gradient.sum(axis=-1)
  top_mag = float(magnitude.max())
  tiles = [
    pic.Tile(_input_tile(x), 'input'),
    pic.Tile(pic.colorize(magnitude, 'inferno', 0.0, top_mag), '|gradient|'),
    pic.Tile(pic.symmetric(signed), 'gradient'),
  ]
  zoom = pic.zoom_for(max(x.shape[:2]), 160)
  boxes = pic.save_sheet(
    os.path.join(out_dir, 'saliency.png'),
    f'Saliency of class {top} (score {score:.4g}; {what})',
    [tiles],
    zoom,
    notes=[
      'The gradient of the top class score with respect to the input pixels '
      '(the normalized image the network sees). Middle: its largest absolute '
      'value over the channels, on the colour bar. Right: the gradient summed '
      'over the channels, blue negative, white 0, red positive, on a scale '
      'symmetric about 0. Left: the input, scaled from its minimum to its maximum.'
    ],
    colorbar=pic.Colorbar('inferno', 0.0, max(top_mag, 1e-12), '|d score / d pixel|'),
  )
  return _save(
    out_dir, 'saliency', input=x, gradient=gradient, top=top, score=score, boxes=boxes, zoom=zoom
  )


def _classic(out_dir, what, x, responses, conv_path, learned) -> str:
  """classic_kernels.png: hand-made kernels' responses above the learned ones'."""
  first = [pic.Tile(_input_tile(x), 'input')]
  first += [pic.Tile(pic.symmetric(r), name) for name, r in responses.items()]
  n = min(learned.shape[-1], LEARNED_MAPS)
  up = max(1, round(x.shape[0] / learned.shape[0]))  # a strided conv's maps, enlarged
  maps = [
    pic.Tile(
      np.repeat(np.repeat(pic.symmetric(learned[..., c]), up, 0), up, 1), f'{conv_path} #{c}'
    )
    for c in range(n)
  ]
  rows = [first, *pic.grid(maps, len(first))]
  zoom = pic.zoom_for(max(x.shape[:2]), 112)
  boxes = pic.save_sheet(
    os.path.join(out_dir, 'classic_kernels.png'),
    f'Hand-made kernels and the learned {conv_path} ({what})',
    rows,
    zoom,
    notes=[
      'Top: the input and its cross-correlation (VALID) with the classic 3x3 '
      'kernels (the mean over the channels of a colour input). Below: the first '
      f'{n} output maps of {conv_path}, the first learned convolution, before its '
      'activation'
      + (f" (magnified {up}x to the input's size)" if up > 1 else '')
      + '. Each tile on its own scale symmetric about 0: blue negative, white 0, red '
      'positive.'
    ],
  )
  return _save(
    out_dir,
    'classic_kernels',
    names=np.array(list(responses)),
    responses=np.stack(list(responses.values())),
    learned=learned,
    boxes=boxes,
    zoom=zoom,
  )


def _save(out_dir, name, **arrays) -> str:
  """Writes the picture's numbers to NAME.npz; returns the PNG's path."""
  np.savez(os.path.join(out_dir, name + '.npz'), **arrays)
  return os.path.join(out_dir, name + '.png')
