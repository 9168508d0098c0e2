"""What a network computes inside: module outputs by path, saliency, classic kernels.

Module outputs are caught with a `flax.linen.intercept_methods` interceptor, as
`train_lib/modes/costs.py` traces them, so a layer is named by the path `--mode=summary`
prints (e.g. 'C1', 'layer1_0/conv1') and any model of the zoo works unchanged.
"""

import dataclasses
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import layers

# Hand-made 3x3 kernels, written for cross-correlation (layers.cross_correlate): the
# x kernels respond to vertical edges (a change along x), the y kernels to horizontal.
CLASSIC_KERNELS = {
  'vertical edge': np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float32),
  'horizontal edge': np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.float32),
  'Sobel x': np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32),
  'Sobel y': np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32),
  'Scharr x': np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], np.float32),
  'Scharr y': np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]], np.float32),
}


@dataclasses.dataclass(frozen=True)
class Call:
  """The first call of one module in the forward pass."""

  path: str  # as --mode=summary prints it, e.g. 'layer1_0/conv1'
  type: str  # class name
  output_shape: tuple[int, ...] | None  # of its first array output
  is_conv: bool  # an nn.Conv
  has_kernel: bool  # holds a 'kernel' parameter itself (a conv or dense leaf)


def _first_array(tree):
  leaves = [a for a in jax.tree_util.tree_leaves(tree) if hasattr(a, 'shape')]
  return leaves[0] if leaves else None


def _apply(model: nn.Module, variables, x):
  """The eval-mode forward pass; collections a model may sow into are discarded."""
  mutable = [c for c in variables if c != 'params']
  out, _ = model.apply(variables, x, train=False, mutable=mutable)
  return _first_array(out)


def _interceptor(on_call, on_start=lambda module: None):
  """Calls `on_start(module)` before and `on_call(module, output)` after each module
  call; skips setup() and a module calling its own methods."""
  stack = []

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == 'setup' or (stack and stack[-1] is module):
      return next_fun(*args, **kwargs)
    on_start(module)
    stack.append(module)
    try:
      out = next_fun(*args, **kwargs)
    finally:
      stack.pop()
    on_call(module, out)
    return out

  return interceptor


def _subtree(params, path: str):
  node = params
  for name in filter(None, path.split('/')):
    if not isinstance(node, Mapping) or name not in node:
      return None
    node = node[name]
  return node


def list_calls(model: nn.Module, variables, input_shape) -> list[Call]:
  """Every module of the forward pass in call order, traced abstractly (no compute).

  Args:
    model: the flax Module; `__call__(x, *, train)` is the forward pass.
    variables: its variables (arrays or shape-dtype structs).
    input_shape: shape of the input batch, NHWC.
  """
  calls: dict[str, Call | None] = {}  # in the order the calls start
  params = variables.get('params', {})

  def on_start(module):
    calls.setdefault('/'.join(module.path), None)

  def on_call(module, out):
    path = '/'.join(module.path)
    if calls[path] is not None or not path:
      return
    first = _first_array(out)
    own = _subtree(params, path)
    calls[path] = Call(
      path,
      type(module).__name__,
      None if first is None else tuple(first.shape),
      isinstance(module, nn.Conv),
      isinstance(own, Mapping) and 'kernel' in own,
    )

  x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  with nn.intercept_methods(_interceptor(on_call, on_start)):
    jax.eval_shape(lambda v, x: _apply(model, v, x), variables, x)
  return [c for c in calls.values() if c is not None]


def first_conv(calls: list[Call]) -> Call | None:
  """The first `nn.Conv` in call order."""
  return next((c for c in calls if c.is_conv), None)


def default_layers(calls: list[Call], n: int = 2) -> list[str]:
  """The first `n` convolution-like layers: leaves with a kernel and an NHWC output."""
  convs = [
    c.path
    for c in calls
    if c.has_kernel and c.output_shape is not None and len(c.output_shape) == 4
  ]
  return convs[:n]


def kernel(params, path: str) -> np.ndarray:
  """The 'kernel' parameter of the module at `path`, as a float32 numpy array."""
  own = _subtree(params, path)
  if not (isinstance(own, Mapping) and 'kernel' in own):
    raise ValueError(f"no 'kernel' parameter at '{path}'")
  return np.asarray(own['kernel'], np.float32)


def forward(model: nn.Module, variables, x, paths) -> tuple[jax.Array, dict]:
  """The model's output and the first output of each module in `paths`.

  Args:
    model: the flax Module.
    variables: its variables.
    x: the input batch, NHWC, as the model sees it (normalized).
    paths: module paths whose outputs to return.

  Returns:
    (output, {path: the module's first array output}), computed in float32.
  """
  wanted = frozenset(paths)

  def fwd(variables, x):
    caught = {}

    def on_call(module, out):
      path = '/'.join(module.path)
      first = _first_array(out)
      if path in wanted and path not in caught and first is not None:
        caught[path] = first.astype(jnp.float32)

    with nn.intercept_methods(_interceptor(on_call)):
      out = _apply(model, variables, x)
    return out.astype(jnp.float32), caught

  return jax.jit(fwd)(variables, x)


def top_class_score(output, top=None):
  """The top class's score of example 0, and that class.

  A classifier's output (N, classes) gives output[0, top]; a dense output (N, H, W,
  classes) gives the class's mean over positions. `top` defaults to the argmax.
  """
  scores = output[0] if output.ndim == 2 else jnp.mean(output[0], axis=(0, 1))
  if top is None:
    top = jnp.argmax(scores)
  return scores[top], top


def saliency(model: nn.Module, variables, x) -> tuple[np.ndarray, int, float]:
  """Gradient of the top class score with respect to the input (Simonyan et al. 2013).

  Args:
    model: the flax Module.
    variables: its variables.
    x: one input, shape (1, H, W, C), as the model sees it (normalized).

  Returns:
    (gradient of shape (1, H, W, C), the top class, its score).
  """

  def score(x, variables, top=None):
    return top_class_score(_apply(model, variables, x).astype(jnp.float32), top)

  value, top = jax.jit(score)(x, variables)
  top = int(top)
  grad = jax.jit(jax.grad(lambda x, v: score(x, v, top)[0]))(x, variables)
  return np.asarray(grad), top, float(value)


def classic_responses(x) -> dict[str, np.ndarray]:
  """Each CLASSIC_KERNELS kernel cross-correlated ('VALID') with example 0 of `x`.

  A colour input is reduced to the mean of its channels first.

  Returns:
    {kernel name: (H - 2, W - 2) response}.
  """
  gray = jnp.mean(jnp.asarray(x[:1], jnp.float32), axis=-1, keepdims=True)
  return {
    name: np.asarray(layers.cross_correlate(gray, jnp.asarray(k))[0, :, :, 0])
    for name, k in CLASSIC_KERNELS.items()
  }
