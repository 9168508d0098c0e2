"""`--mode=inspect` (kernels, feature maps, saliency, classic kernels) and the
convolution arithmetic of models/layers.py, checked against independent computations."""

import os
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import assert_user_error, run_main
from PIL import Image
from scipy import signal

from configs import digits_lenet5
from input_pipeline import datasets, preprocess
from models import layers, registry
from train_lib import train
from train_lib.errors import UserError
from train_lib.modes import inspect

CONFIG = '--config=configs/digits_lenet5.py'
STEPS = 20
PAD = 12  # train_lib/pictures.PAD: the margin around a sheet's content


def _config(data_dir):
  config = digits_lenet5.get_config()
  config.dataset.data_dir = data_dir
  config.num_train_steps = STEPS
  return config


@pytest.fixture(scope='module')
def inspected(data_dir, tmp_path_factory):
  """The default digits job trained briefly, then `python main.py --mode=inspect` on its
  workdir. Trained in this process on one device, as `--mode=train` would: that saves
  a process start and most of the compilation."""
  workdir = str(tmp_path_factory.mktemp('inspect') / 'run')
  train.train_and_evaluate(_config(data_dir), workdir, devices=jax.devices()[:1])
  result = run_main(
    CONFIG,
    f'--workdir={workdir}',
    f'--config.dataset.data_dir={data_dir}',
    f'--config.num_train_steps={STEPS}',
    '--mode=inspect',
  )
  assert result.returncode == 0, result.stderr
  return workdir, result.stdout


def _params(workdir):
  """The stored parameters of the newest checkpoint, read with orbax directly."""
  restored = ocp.StandardCheckpointer().restore(
    os.path.join(workdir, 'checkpoints', str(STEPS), 'default')
  )
  return jax.tree.map(np.asarray, restored['params'])


def _png(path):
  return np.asarray(Image.open(path).convert('RGB'), np.int32)


def _crops(png, boxes, zoom):
  """The tiles at `boxes`, one pixel per tile value (every zoom-th pixel)."""
  return [png[t : t + h : zoom, x : x + w : zoom] for t, x, h, w in boxes]


def _check_sheet(path, boxes, shapes, zoom):
  """Tiles where the boxes say, of the tiles' sizes, inside the image, not blank."""
  png = _png(path)
  height, width, _ = png.shape
  assert len(boxes) == len(shapes)
  for (top, left, h, w), shape in zip(boxes, shapes):
    assert (h, w) == (shape[0] * zoom, shape[1] * zoom)
    assert PAD <= left and left + w <= width - PAD and PAD <= top and top + h < height
  # As wide as the tiles (up to a narrower last column) or the 420-pixel text minimum;
  # as high as the tiles and the text under them.
  content = max(x + w for _, x, _, w in boxes) - min(x for _, x, _, _ in boxes)
  assert 0 <= width - 2 * PAD - max(content, 420) <= 2 * zoom + 1
  assert 0 < height - max(t + h for t, _, h, _ in boxes) < 200
  tiles = np.concatenate([png[t : t + h, x : x + w].reshape(-1, 3) for t, x, h, w in boxes])
  assert tiles.std() > 10, f'{path} looks blank'
  assert (png < 128).any() and (png > 200).any()
  return png


def test_worked_example_cross_correlation_and_convolution():
  image = np.zeros((6, 6), np.float32)
  image[:, :3] = 10.0
  edge = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float32)
  expected = np.tile(np.array([0, 30, 30, 0], np.float32), (4, 1))
  x = jnp.asarray(image)[None, :, :, None]
  # What the conv layers compute: nn.Conv with this kernel, and layers.cross_correlate.
  conv = nn.Conv(1, (3, 3), padding='VALID', use_bias=False)
  by_layer = conv.apply({'params': {'kernel': jnp.asarray(edge)[:, :, None, None]}}, x)
  np.testing.assert_array_equal(np.asarray(by_layer)[0, :, :, 0], expected)
  np.testing.assert_array_equal(
    np.asarray(layers.cross_correlate(x, jnp.asarray(edge)))[0, :, :, 0], expected
  )
  # Textbook convolution S(i,j) = sum_m sum_n I(m,n) K(i-m, j-n), summed literally over
  # the outputs where the flipped kernel lies inside the image.
  textbook = np.zeros((4, 4), np.float32)
  for i in range(2, 6):
    for j in range(2, 6):
      textbook[i - 2, j - 2] = sum(
        image[m, n] * edge[i - m, j - n] for m in range(i - 2, i + 1) for n in range(j - 2, j + 1)
      )
  np.testing.assert_array_equal(textbook, -expected)
  np.testing.assert_array_equal(
    np.asarray(layers.convolve(x, jnp.asarray(edge)))[0, :, :, 0], -expected
  )
  # A kernel that flipping does more to than negate: both against scipy.
  rng = np.random.default_rng(0)
  img, k = rng.normal(size=(7, 9)).astype(np.float32), rng.normal(size=(3, 2))
  xi, kj = jnp.asarray(img)[None, :, :, None], jnp.asarray(k)
  np.testing.assert_allclose(
    np.asarray(layers.cross_correlate(xi, kj))[0, ..., 0],
    signal.correlate2d(img, k, 'valid'),
    rtol=1e-5,
    atol=1e-5,
  )
  np.testing.assert_allclose(
    np.asarray(layers.convolve(xi, kj))[0, ..., 0],
    signal.convolve2d(img, k, 'valid'),
    rtol=1e-5,
    atol=1e-5,
  )


def test_writes_and_prints_every_picture(inspected):
  workdir, stdout = inspected
  out = os.path.join(workdir, 'inspect')
  names = ['kernels', 'features_C1', 'features_C3', 'saliency', 'classic_kernels']
  printed = [line for line in stdout.splitlines() if line.endswith('.png')]
  assert printed == [os.path.join(out, n + '.png') for n in names]
  features = {n: np.load(os.path.join(out, f'features_{n}.npz')) for n in ('C1', 'C3')}
  assert features['C1']['maps'].shape == (28, 28, 6)
  assert features['C3']['maps'].shape == (10, 10, 16)
  for name, data in features.items():
    maps = data['maps']
    _check_sheet(
      os.path.join(out, f'features_{name}.png'),
      data['boxes'],
      [maps.shape[:2]] * maps.shape[-1],
      int(data['zoom']),
    )
    row = next(line.split() for line in stdout.splitlines() if line.startswith(name + ' '))
    assert row[2] == 'x'.join(map(str, maps.shape))
    np.testing.assert_allclose([float(row[3]), float(row[4])], [maps.mean(), maps.std()], rtol=1e-3)
    assert row[5] == f'{np.mean(maps == 0):.2%}'


def test_feature_maps_are_the_layers_outputs(inspected):
  workdir, _ = inspected
  out = os.path.join(workdir, 'inspect')
  params = _params(workdir)
  x = np.load(os.path.join(out, 'saliency.npz'))['input']
  c1 = (
    np.stack(
      [
        signal.correlate2d(x[..., 0], params['C1']['kernel'][:, :, 0, o], 'valid') for o in range(6)
      ],
      -1,
    )
    + params['C1']['bias']
  )
  np.testing.assert_allclose(
    np.load(os.path.join(out, 'features_C1.npz'))['maps'], c1, rtol=1e-4, atol=1e-4
  )


def test_kernel_tiles_are_the_stored_kernels(inspected):
  workdir, _ = inspected
  out = os.path.join(workdir, 'inspect')
  kernel = _params(workdir)['C1']['kernel']  # 5x5x1x6
  data = np.load(os.path.join(out, 'kernels.npz'))
  zoom, boxes = int(data['zoom']), data['boxes']
  png = _check_sheet(os.path.join(out, 'kernels.png'), boxes, [(5, 5)] * 6, zoom)
  for o, crop in enumerate(_crops(png, boxes, zoom)):
    k = kernel[:, :, 0, o]
    expected = (k - k.min()) / (k.max() - k.min())  # each tile on its own scale
    np.testing.assert_allclose(data['tiles'][o, ..., 0], expected, atol=1e-6)
    for c in range(3):  # gray: R = G = B = the normalized weight
      np.testing.assert_allclose(crop[..., c] / 255.0, expected, atol=0.5 / 255 + 1e-6)


def test_saliency_is_the_gradient_of_the_top_score(inspected, data_dir):
  workdir, _ = inspected
  config = _config(data_dir)
  data = np.load(os.path.join(workdir, 'inspect', 'saliency.npz'))
  builder = datasets.get_builder(config.dataset)
  image = datasets.load_arrays(builder, config.dataset.eval_split)['image'][:1]
  x = preprocess.normalize(jnp.asarray(image), config.input)
  np.testing.assert_allclose(data['input'], np.asarray(x[0]), atol=1e-6)
  model = registry.create_model(config.model, num_classes=10)
  variables = {'params': _params(workdir)}
  logits = model.apply(variables, x, train=False)
  top = int(jnp.argmax(logits[0]))
  grad = jax.jit(jax.grad(lambda x: model.apply(variables, x, train=False)[0, top]))(x)
  assert int(data['top']) == top
  np.testing.assert_allclose(data['gradient'], np.asarray(grad[0]), rtol=1e-4, atol=1e-6)
  _check_sheet(
    os.path.join(workdir, 'inspect', 'saliency.png'),
    data['boxes'],
    [(32, 32)] * 3,
    int(data['zoom']),
  )


def test_classic_kernel_responses(inspected):
  workdir, _ = inspected
  out = os.path.join(workdir, 'inspect')
  data = np.load(os.path.join(out, 'classic_kernels.npz'))
  x = np.load(os.path.join(out, 'saliency.npz'))['input'][..., 0]
  sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
  scharr_y = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]])
  references = {
    'vertical edge': signal.correlate2d(x, np.array([[1, 0, -1]] * 3), 'valid'),
    'horizontal edge': signal.correlate2d(x, np.array([[1, 0, -1]] * 3).T, 'valid'),
    'Sobel x': signal.correlate2d(x, sobel_x, 'valid'),
    'Sobel y': signal.correlate2d(x, sobel_x.T, 'valid'),
    'Scharr x': signal.correlate2d(x, scharr_y.T, 'valid'),
    'Scharr y': signal.correlate2d(x, scharr_y, 'valid'),
  }
  assert list(data['names']) == list(references)
  for name, response in zip(data['names'], data['responses']):
    np.testing.assert_allclose(response, references[name], rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(
    data['learned'], np.load(os.path.join(out, 'features_C1.npz'))['maps']
  )
  _check_sheet(
    os.path.join(out, 'classic_kernels.png'),
    data['boxes'],
    [(32, 32)] + [(30, 30)] * 6 + [(28, 28)] * 6,
    int(data['zoom']),
  )


def test_chosen_layers_of_an_image_file(inspected, data_dir, tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  shutil.copytree(inspected[0], workdir, ignore=shutil.ignore_patterns('inspect'))
  pixels = np.zeros((32, 32), np.uint8)
  pixels[6:26, 14:19] = 255  # a one
  path = str(tmp_path / 'one.png')
  Image.fromarray(np.stack([pixels] * 3, -1)).save(path)  # RGB; converted to gray
  config = _config(data_dir)
  config.inspect.image = path
  config.inspect.layers = 'C5, F6'
  written = inspect.run(config, workdir)
  assert [os.path.basename(p) for p in written] == [
    'kernels.png',
    'features_C5.png',
    'features_F6.png',
    'saliency.png',
    'classic_kernels.png',
  ]
  expected = (pixels / 255.0 - config.input.mean[0]) / config.input.std[0]
  data = np.load(os.path.join(workdir, 'inspect', 'saliency.npz'))
  np.testing.assert_allclose(data['input'][..., 0], expected, atol=1e-5)
  f6 = np.load(os.path.join(workdir, 'inspect', 'features_F6.npz'))
  assert f6['maps'].shape == (84,)
  _check_sheet(written[2], f6['boxes'], [(9, 10)], int(f6['zoom']))  # 84 values, 9x10
  rows = [line.split() for line in capsys.readouterr().out.splitlines()]
  assert ['F6', 'Dense', '84'] in [r[:3] for r in rows]
  assert ['C5', 'Conv', '1x1x120'] in [r[:3] for r in rows]

  config.inspect.layers = 'C1,C9'
  with pytest.raises(UserError) as e:
    inspect.run(config, workdir)
  message = str(e.value)
  assert "unknown layer 'C9'" in message and 'C1, S2, C3, S4, C5, F6, output' in message
  assert '\n' not in message


def test_no_checkpoint(data_dir, tmp_path):
  workdir = tmp_path / 'empty'
  result = run_main(
    CONFIG, f'--workdir={workdir}', f'--config.dataset.data_dir={data_dir}', '--mode=inspect'
  )
  assert_user_error(result, 'no checkpoint in', 'train first', '--mode=convert')
  assert not workdir.exists()


def test_rgb_kernels_of_any_model(tmp_path):
  """A 3-channel first convolution: RGB tiles, each scaled over its three channels."""

  class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      x = nn.relu(nn.Conv(4, (3, 3), name='stem')(x))
      return nn.Dense(3, name='head')(x.reshape((x.shape[0], -1)))

  model = Tiny()
  x = jax.random.normal(jax.random.key(0), (1, 8, 8, 3))
  variables = model.init(jax.random.key(1), x, train=False)
  written = inspect.write_pictures(model, variables, x, '', str(tmp_path), 'tiny', 'noise')
  assert [os.path.basename(p) for p in written] == [
    'kernels.png',
    'features_stem.png',
    'saliency.png',
    'classic_kernels.png',
  ]
  data = np.load(tmp_path / 'kernels.npz')
  zoom = int(data['zoom'])
  png = _check_sheet(written[0], data['boxes'], [(3, 3)] * 4, zoom)
  kernel = np.asarray(variables['params']['stem']['kernel'])
  for o, crop in enumerate(_crops(png, data['boxes'], zoom)):
    k = kernel[..., o]
    np.testing.assert_allclose(
      crop / 255.0, (k - k.min()) / (k.max() - k.min()), atol=0.5 / 255 + 1e-6
    )
