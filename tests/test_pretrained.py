"""Pretrained PyTorch weights: each mapped family computes what torchvision's or timm's
model computes with the same weights; strict checking; export round trip; predict.

Each PyTorch model gets random weights and random BatchNorm statistics (so a wrong
mean/var/scale/offset mapping shows) and runs in eval mode; ours gets its state dict
through a file, and both see the same random input. Tolerance: the largest absolute
logit difference <= 1e-4 times the largest |logit|.
"""

import functools
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

pytest.importorskip(
  'torch', reason='torch is not installed: the PyTorch reference tests run on Python 3.11 (CI)'
)
import timm
import torch
import torchvision
from flax import traverse_util
from helpers import assert_user_error, fast_compile_options, run_main
from PIL import Image
from safetensors import numpy as st_numpy
from safetensors import torch as st_torch

from models import googlenet, hrnet, registry, torch_weights
from tests import torch_references
from train_lib.errors import UserError
from train_lib.modes import predict, pretrained, weight_files

RTOL = 1e-4
# Compile-time options only (same program): XLA's CPU compiler dominates these tests.
fast_jit = functools.partial(
  jax.jit,
  compiler_options=fast_compile_options(),
)


def randomize_batch_norm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
  """Random BN scale, offset and running statistics (fresh ones are 1, 0, 0, 1)."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        n = m.num_features
        m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
        m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        m.weight.copy_(torch.rand(n, generator=g) + 0.5)
        m.bias.copy_(torch.randn(n, generator=g) * 0.2)
  return model.eval()


def small_classifier(model: torch.nn.Module, first: int, hidden: int, classes: int):
  """torchvision's AlexNet/VGG classifier with `hidden` units instead of 4096."""
  linears = [i for i, m in enumerate(model.classifier) if isinstance(m, torch.nn.Linear)]
  for i, (n_in, n_out) in zip(linears, [(first, hidden), (hidden, hidden), (hidden, classes)]):
    model.classifier[i] = torch.nn.Linear(n_in, n_out)
  return model.eval()


def save(torch_model, path) -> str:
  """The state dict as a file: .pth through torch.save, else .safetensors."""
  state = torch_model.state_dict()
  if path.endswith('.pth'):
    torch.save(state, path)
  else:
    st_torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
  return path


def our_model(name, num_classes, **kwargs):
  return registry.create_model(
    ml_collections.ConfigDict(dict(name=name, **kwargs)), num_classes=num_classes
  )


def import_file(model, path, size, strict=True, channels=3):
  """Our variables from the file at `path` (zeros for anything not loaded)."""
  abstract = jax.eval_shape(
    lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, channels)), train=False)
  )
  loaded, report = pretrained.load(
    model,
    pretrained.flat_shapes(abstract),
    weight_files.read_tensors(path),
    strict=strict,
    source=path,
    model_name='test',
  )
  zeros = {p: np.zeros(s.shape, s.dtype) for p, s in traverse_util.flatten_dict(abstract).items()}
  return traverse_util.unflatten_dict({**zeros, **loaded}), report


def assert_close(ours, reference):
  err = np.abs(np.asarray(ours) - reference).max()
  assert err <= RTOL * np.abs(reference).max(), (err, np.abs(reference).max())


def compare_logits(torch_model, model, path, size, batch=2):
  variables, report = import_file(model, save(torch_model, path), size)
  assert not report.not_loaded and not report.unused
  x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype(np.float32)
  ours = fast_jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  if ours.ndim == 4:  # dense outputs: NHWC -> PyTorch's NCHW
    ours = ours.transpose(0, 3, 1, 2)
  with torch.no_grad():
    reference = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  assert ours.shape == reference.shape
  assert_close(ours, reference)
  return variables


def test_alexnet_matches_torchvision(tmp_path):
  # 128 px gives conv5 3x3 maps, which the adaptive pool spreads over 6x6: fc6's
  # NCHW -> NHWC row permutation is exercised on distinct positions.
  tm = small_classifier(torchvision.models.alexnet(num_classes=10), 256 * 6 * 6, 64, 10)
  compare_logits(tm, our_model('alexnet', 10, fc_features=64), str(tmp_path / 'alexnet.pth'), 128)


def test_vgg11_bn_matches_torchvision(tmp_path):
  tm = small_classifier(
    randomize_batch_norm(torchvision.models.vgg11_bn(num_classes=10)), 512 * 7 * 7, 64, 10
  )
  compare_logits(
    tm, our_model('vgg11_bn', 10, fc_features=64), str(tmp_path / 'vgg11_bn.safetensors'), 64
  )


def test_googlenet_matches_torchvision_with_transform_input(tmp_path):
  tm = randomize_batch_norm(
    torchvision.models.googlenet(
      num_classes=10, aux_logits=True, transform_input=True, init_weights=False
    )
  )
  model = our_model('googlenet', 10, aux_logits=True, transform_input=True)
  variables = compare_logits(tm, model, str(tmp_path / 'googlenet.safetensors'), 64)
  # The aux heads do not run in eval: compare aux1 alone, on a 4a-shaped input.
  x = np.random.default_rng(1).normal(size=(2, 4, 4, 512)).astype(np.float32)
  aux_vars = {c: variables[c]['aux1'] for c in ('params', 'batch_stats')}
  ours = googlenet.InceptionAux(10).apply(aux_vars, x, train=False)
  with torch.no_grad():
    reference = tm.aux1(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  assert_close(ours, reference)


@pytest.mark.parametrize('depth', [18, 50])
def test_resnet_matches_torchvision(tmp_path, depth):
  tm = randomize_batch_norm(getattr(torchvision.models, f'resnet{depth}')(num_classes=10))
  compare_logits(tm, our_model(f'resnet{depth}', 10), str(tmp_path / f'resnet{depth}.pth'), 64)


def test_resnet_matches_timm(tmp_path):
  tm = randomize_batch_norm(timm.create_model('resnet18', num_classes=10))
  compare_logits(tm, our_model('resnet18', 10), str(tmp_path / 'timm18.safetensors'), 64)


def test_hrnet_matches_timm(tmp_path):
  tm = randomize_batch_norm(timm.create_model('hrnet_w18_small', num_classes=10))
  compare_logits(tm, our_model('hrnet_w18_small_v1', 10), str(tmp_path / 'hrnet.safetensors'), 64)


def torch_keys(model, size=64):
  """The PyTorch keys our mapping gives `model`'s variables."""
  abstract = jax.eval_shape(
    lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)), train=False)
  )
  return {e.key for e in torch_weights.entries(model, pretrained.flat_shapes(abstract)).values()}


def test_hrnet_segmentation_and_pose_names():
  """The backbone keys are timm's (= the repositories'); the heads are seg_hrnet.py's
  last_layer (conv, BN, ReLU, conv) and pose_hrnet.py's final_layer."""
  with torch.device('meta'):  # names and shapes only, no memory
    timm_keys = {
      k
      for k in timm.create_model('hrnet_w18_small').state_dict()
      if not k.endswith('num_batches_tracked')
    }
  head = ('incre_modules.', 'downsamp_modules.', 'final_layer.', 'classifier.')
  backbone = {k for k in timm_keys if not k.startswith(head)}
  seg = torch_keys(our_model('hrnet_seg_w18_small_v1', 19))
  assert seg - backbone == {
    f'last_layer.{i}.{p}'
    for i, p in [
      (0, 'weight'),
      (0, 'bias'),
      (1, 'weight'),
      (1, 'bias'),
      (1, 'running_mean'),
      (1, 'running_var'),
      (3, 'weight'),
      (3, 'bias'),
    ]
  }
  assert backbone <= seg
  pose = torch_keys(hrnet.PoseHRNet(hrnet.STAGES['w18_small_v1'], num_classes=17))
  assert {k for k in pose if not k.startswith(('stage', 'transition', 'layer1'))} == {
    'conv1.weight',
    'conv2.weight',
    'final_layer.weight',
    'final_layer.bias',
    *(f'bn{i}.{p}' for i in (1, 2) for p in ('weight', 'bias', 'running_mean', 'running_var')),
  }


def test_unet_same_matches_milesial(tmp_path):
  # 30 px: floor pooling 30 -> 15 -> 7, so up-sampled maps are zero-padded to the skip.
  tm = randomize_batch_norm(torch_references.UNet(3, 2, base=8, depth=2))
  compare_logits(
    tm, our_model('unet_same', 2, base_width=8, depth=2), str(tmp_path / 'unet.pth'), 30
  )


def test_u2netp_matches_the_repository(tmp_path):
  tm = randomize_batch_norm(torch_references.U2NETP(3, 1))
  compare_logits(tm, our_model('u2netp', 1), str(tmp_path / 'u2netp.safetensors'), 32, batch=1)


def test_non_strict_gives_a_new_head_and_a_gray_input(tmp_path):
  """ImageNet-shaped weights into a 10-class model of 1-channel images: the head stays
  as initialised, conv1 is summed over R, G, B, and the features equal torch's on the
  gray image repeated in three channels."""
  tm = randomize_batch_norm(torchvision.models.resnet18())
  path = save(tm, str(tmp_path / 'r18.safetensors'))
  model = our_model('resnet18', 10)
  fc_mismatch = (
    r"'fc\.(weight' has shape \(1000, 512\), the model needs \(10, 512\)"
    r"|bias' has shape \(1000,\), the model needs \(10,\))"
  )
  with pytest.raises(UserError, match=fc_mismatch):
    import_file(model, path, 32)
  variables, report = import_file(model, path, 32, strict=False, channels=1)
  assert sorted(report.not_loaded) == [
    'fc.bias (10,) (file: (1000,))',
    'fc.weight (10, 512) (file: (1000, 512))',
  ]
  assert report.adapted == ['conv1.weight (64, 3, 7, 7) -> (64, 1, 7, 7)']
  assert not report.unused and len(report.loaded) == 100
  assert not np.any(variables['params']['fc']['kernel'])  # left as it was
  x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype(np.float32)
  features = fast_jit(
    lambda v, x: model.apply(v, x, train=False, return_features=True)['pre_logits']
  )(variables, x)
  tm.fc = torch.nn.Identity()
  with torch.no_grad():
    reference = tm(torch.from_numpy(np.repeat(x, 3, -1).transpose(0, 3, 1, 2))).numpy()
  assert_close(features, reference)


def test_wrapped_checkpoints_are_unwrapped(tmp_path):
  """A training checkpoint: state dict under 'state_dict', keys of a DataParallel'd
  FullModel (HRNet-Semantic-Segmentation) with the loss's class weights beside."""
  w = torch.arange(6.0).reshape(2, 3)
  path = str(tmp_path / 'checkpoint.pth')
  torch.save(
    {'epoch': 3, 'state_dict': {'module.model.fc.weight': w, 'module.loss.criterion.weight': w[0]}},
    path,
  )
  tensors = weight_files.read_tensors(path)
  assert list(tensors) == ['fc.weight']
  np.testing.assert_array_equal(tensors['fc.weight'], w.numpy())


def test_truncated_pytorch_file_is_a_user_error(tmp_path):
  path = save(torchvision.models.alexnet(), str(tmp_path / 'alexnet.pth'))
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(UserError, match='truncated'):
    weight_files.read_tensors(path)


# Through main.py, as a user runs it.


@pytest.fixture(scope='module')
def resnet18_file(tmp_path_factory):
  """A torchvision ResNet-18 with random weights and BN statistics, and its file.

  .safetensors, so that main.py needs no torch (the tests above read .pth files).
  """
  torch.manual_seed(0)
  tm = randomize_batch_norm(torchvision.models.resnet18())
  return tm, save(tm, str(tmp_path_factory.mktemp('weights') / 'resnet18.safetensors'))


# ImageNet's evaluation scaled from 224 to 64: shorter side 73 (as 256), central crop 64.
RESNET18 = (
  '--config=configs/imagenet_resnet.py:18',
  '--config.input.image_size=64',
  '--config.input.eval_resize=73',
)


def test_convert_export_round_trip_and_predict(tmp_path, resnet18_file):
  tm, path = resnet18_file
  workdir, exported = str(tmp_path / 'run'), str(tmp_path / 'resnet18.safetensors')
  result = run_main(
    *RESNET18,
    '--mode=convert',
    f'--config.init_from={path}',
    f'--config.export_to={exported}',
    f'--workdir={workdir}',
  )
  assert result.returncode == 0, result.stderr
  assert os.path.exists(os.path.join(workdir, 'config.json'))
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '0'))
  # torch -> ours -> torch gives the same tensors, and torch loads them strictly.
  original = {k: v.numpy() for k, v in tm.state_dict().items()}
  back = st_numpy.load_file(exported)
  assert sorted(back) == sorted(original)
  for key, value in original.items():
    np.testing.assert_array_equal(back[key], value, err_msg=key)
  torchvision.models.resnet18().load_state_dict(st_torch.load_file(exported), strict=True)

  # Predict from the checkpoint: PNGs of several sizes, as torchvision evaluates them.
  images = tmp_path / 'images'
  images.mkdir()
  rng = np.random.default_rng(0)
  for name, (h, w) in zip(['b.png', 'a.png', 'c.png'], [(80, 100), (90, 70), (64, 64)]):
    Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(images / name)
  output = str(tmp_path / 'logits.npz')
  result = run_main(
    *RESNET18,
    '--mode=predict',
    f'--workdir={workdir}',
    f'--config.predict.images={images}/*.png',
    f'--config.predict.output={output}',
    '--config.predict.class_names=index',
  )
  assert result.returncode == 0, result.stderr
  saved = np.load(output)
  files = sorted(str(p) for p in images.glob('*.png'))
  assert list(saved['files']) == files
  t = torchvision.transforms
  preprocess = t.Compose(
    [
      t.Resize(73),
      t.CenterCrop(64),
      t.ToTensor(),
      t.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ]
  )
  batch = torch.stack([preprocess(Image.open(f).convert('RGB')) for f in files])
  with torch.no_grad():
    reference = tm(batch).numpy()
  assert saved['logits'].shape == (3, 1000)
  assert_close(saved['logits'], reference)
  # The top 5 of each image, most probable first.
  lines = result.stdout.split(files[0] + '\n')[1].splitlines()[:5]
  assert [int(line.split()[1]) for line in lines] == list(np.argsort(-reference[0])[:5])


def test_imagenet_class_names():
  names = predict.class_names('auto', 1000)
  assert names[0] == 'tench (n01440764)' and names[999] == 'toilet tissue (n15075141)'
  assert predict.class_names('auto', 10) == [str(i) for i in range(10)]


def test_truncated_file_gives_one_error_line(tmp_path, resnet18_file):
  _, original = resnet18_file
  path = str(tmp_path / 'resnet18.safetensors')
  shutil.copyfile(original, path)
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 3)
  result = run_main(
    *RESNET18, '--mode=convert', f'--config.init_from={path}', f'--workdir={tmp_path / "run"}'
  )
  assert_user_error(result, 'truncated')
  assert not os.path.exists(tmp_path / 'run')


def test_file_of_another_architecture_gives_one_error_line(tmp_path, resnet18_file):
  _, path = resnet18_file
  result = run_main(
    '--config=configs/imagenet_resnet.py:50',
    '--config.input.image_size=64',
    '--mode=convert',
    f'--config.init_from={path}',
    f'--workdir={tmp_path / "run"}',
  )
  assert_user_error(
    result,
    'does not fit resnet50',
    "'fc.weight' has shape (1000, 512), the model needs (1000, 2048)",
    '165 missing from the file',
  )
  assert not os.path.exists(tmp_path / 'run')


def test_one_wrong_shape_gives_one_error_line(tmp_path, resnet18_file):
  tm, _ = resnet18_file
  state = {k: v.contiguous() for k, v in tm.state_dict().items()}
  state['layer3.1.conv2.weight'] = torch.zeros(256, 256, 1, 1)
  path = str(tmp_path / 'bad.safetensors')
  st_torch.save_file(state, path)
  result = run_main(
    *RESNET18, '--mode=convert', f'--config.init_from={path}', f'--workdir={tmp_path / "run"}'
  )
  assert_user_error(
    result,
    "'layer3.1.conv2.weight' has shape (256, 256, 1, 1), the model needs (256, 256, 3, 3)",
    '1 of another shape',
  )
