"""Per-layer table of a flax model: output shape, parameters and multiply-accumulates.

Nothing is allocated: the variables come from `jax.eval_shape` of `model.init` and the
forward pass is traced by `jax.eval_shape` too, with a `flax.linen.intercept_methods`
interceptor recording every module call (its path, type and output shapes).

MAC convention. One multiply-accumulate of a convolution or a fully connected layer
counts 1; biases, normalization, activations and pooling count 0. This is
torchvision's `_ops` ("GFLOPS" in its model tables, really GMACs) and the "FLOPs" of
the ResNet paper; the HRNet repositories print the same count divided by 1024^3, not
1e9. MACs are counted where the arithmetic happens, at the flax leaves only, so nothing
is counted twice:

- `nn.Conv` / `nn.ConvLocal`: out_h * out_w * out_c * (k_h * k_w * in_c / groups);
- `nn.ConvTranspose`: in_h * in_w * in_c * k_h * k_w * out_c (flax has no groups here);
- `nn.Dense`: in * out per position (times any leading non-batch dims);
- a module that computes by other means (e.g. `jax.lax.conv_general_dilated` called
  directly) declares its own count with a method `macs(input_shape, output_shape)`
  returning the MACs of that call for the whole batch (mark it `@nn.nowrap`); its
  submodules, if any, are still counted on their own.

Every figure is per example: a call's count is divided by the batch of `input_shape`.
Known limit: a module inside `nn.scan` is traced once, so it is counted once.

XLA's cost analysis (`xla_flops`) counts 2 flops per multiply-accumulate plus the
elementwise work, and skips the taps that fall on zero padding, so its figure is about
2x the MACs: a little above for VALID convolutions, a little below with much padding.
"""

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Layer:
  """One module call: its path, type, output shapes, own parameters and MACs."""

  path: str  # e.g. 'layer1_0/conv1'; '' for the top-level module
  type: str  # class name, with '.method' when a method other than __call__ ran
  output_shapes: tuple[tuple[int, ...], ...]  # every array the call returned
  params: int  # leaves of 'params' that sit directly at this path (first call only)
  macs: int  # per example


@dataclasses.dataclass(frozen=True)
class Summary:
  """A model's per-layer table and totals, per example."""

  model: str
  input_shape: tuple[int, ...]
  layers: tuple[Layer, ...]
  total_params: int
  total_macs: int
  xla_flops: float | None = None  # per example; set by summarize(cross_check=True)


def _shape_tree(x):
  """Shapes of the arrays in `x` (a single shape if `x` is one array)."""
  if hasattr(x, 'shape'):
    return tuple(x.shape)
  return jax.tree_util.tree_map(lambda a: tuple(a.shape), x)


def _first_input(args, kwargs):
  """The first argument of a module call: the input a layer transforms."""
  if args:
    return args[0]
  return next(iter(kwargs.values()), None)


def _as_tuple(v: int | Sequence[int]) -> tuple[int, ...]:
  return (v,) if isinstance(v, int) else tuple(v)


def layer_macs(module: nn.Module, inputs, outputs) -> int:
  """MACs of one call of `module` over the whole batch (0 for non-leaf modules).

  Args:
    module: the bound module that was called.
    inputs: its first argument (an array, a tracer or a shape-dtype struct).
    outputs: what it returned.

  Returns:
    The number of multiply-accumulates, by the convention of the module docstring.
  """
  if hasattr(module, 'macs'):
    return int(module.macs(_shape_tree(inputs), _shape_tree(outputs)))
  if isinstance(module, (nn.Conv, nn.ConvLocal)):
    in_c = inputs.shape[-1]
    taps = math.prod(_as_tuple(module.kernel_size)) * (in_c // module.feature_group_count)
    return math.prod(outputs.shape) * taps
  if isinstance(module, nn.ConvTranspose):
    # Each input value is scattered through the whole kernel into every output map.
    taps = math.prod(_as_tuple(module.kernel_size)) * module.features
    return math.prod(inputs.shape) * taps
  if isinstance(module, nn.Dense):
    return math.prod(outputs.shape) * inputs.shape[-1]
  return 0


def _forward(model: nn.Module, variables, *, train: bool):
  """The forward function (variables, x) -> output, the way summaries trace it."""
  mutable = [c for c in variables if c != 'params']

  def fwd(variables, x):
    out, _ = model.apply(
      variables, x, train=train, mutable=mutable, rngs={'dropout': jax.random.key(0)}
    )
    return out

  return fwd


def _params_by_path(params) -> dict[tuple[str, ...], int]:
  """Number of parameters held directly by each module path."""
  counts: dict[tuple[str, ...], int] = {}
  for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = tuple(str(k.key) for k in key_path if isinstance(k, jax.tree_util.DictKey))
    module_path = names[:-1]  # the last name is the parameter's own, e.g. 'kernel'
    counts[module_path] = counts.get(module_path, 0) + math.prod(leaf.shape)
  return counts


def _record_calls(model, variables, x, *, train: bool) -> list[dict[str, Any]]:
  """Traces the forward pass abstractly and returns one record per module call."""
  records: list[dict[str, Any]] = []
  stack: list[nn.Module] = []

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    # setup() builds submodules; a module calling its own methods is one call.
    if context.method_name == 'setup' or (stack and stack[-1] is module):
      return next_fun(*args, **kwargs)
    rec = {'path': tuple(module.path), 'type': type(module).__name__}
    if context.method_name != '__call__':
      rec['type'] += '.' + context.method_name
    records.append(rec)  # before the call, so parents precede their children
    stack.append(module)
    try:
      out = next_fun(*args, **kwargs)
      rec['outputs'] = tuple(
        tuple(a.shape) for a in jax.tree_util.tree_leaves(out) if hasattr(a, 'shape')
      )
      rec['macs'] = layer_macs(module, _first_input(args, kwargs), out)
    finally:
      stack.pop()
    return out

  with nn.intercept_methods(interceptor):
    jax.eval_shape(_forward(model, variables, train=train), variables, x)
  return records


def abstract_variables(
  model: nn.Module,
  input_shape: Sequence[int],
  *,
  train: bool = False,
  input_dtype: Any = jnp.float32,
):
  """The model's variables as a pytree of `jax.ShapeDtypeStruct` (nothing allocated).

  Args:
    model: a flax.linen Module whose `__call__(x, *, train)` is the forward pass.
    input_shape: shape of the input batch, e.g. (1, 224, 224, 3).
    train: the mode to initialize in (a module created only in training, such as an
      auxiliary head, exists only when True).
    input_dtype: dtype of the input.

  Returns:
    The variables ('params', 'batch_stats', ...) as shape-dtype structs.
  """
  x = jax.ShapeDtypeStruct(tuple(input_shape), input_dtype)

  def init(x):
    key = jax.random.key(0)
    return model.init({'params': key, 'dropout': key}, x, train=train)

  return jax.eval_shape(init, x)


def xla_flops(
  model: nn.Module,
  variables_shape,
  input_shape: Sequence[int],
  *,
  train: bool = False,
  input_dtype: Any = jnp.float32,
) -> float:
  """XLA's flop count for the compiled forward pass, from abstract inputs.

  Compiles for the default backend (no arrays are allocated, but compiling a big
  model takes seconds).

  Args:
    model: the flax Module.
    variables_shape: its variables, as arrays or `jax.ShapeDtypeStruct`s.
    input_shape: shape of the input batch.
    train: trace the training-mode forward pass.
    input_dtype: dtype of the input.

  Returns:
    The 'flops' figure of `cost_analysis()`, for the whole batch of `input_shape`.
  """
  variables = jax.tree_util.tree_map(
    lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables_shape
  )
  x = jax.ShapeDtypeStruct(tuple(input_shape), input_dtype)
  fwd = jax.jit(_forward(model, variables, train=train))
  compiled = fwd.lower(variables, x).compile()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  return float(cost['flops'])


def summarize(
  model: nn.Module,
  input_shape: Sequence[int],
  *,
  train: bool = False,
  input_dtype: Any = jnp.float32,
  cross_check: bool = False,
) -> Summary:
  """Per-layer output shapes, parameters and MACs, without allocating the model.

  Args:
    model: a flax.linen Module whose `__call__(x, *, train)` is the forward pass.
    input_shape: shape of the input batch, NHWC, e.g. (1, 224, 224, 3).
    train: summarize the training-mode forward pass.
    input_dtype: dtype of the input.
    cross_check: also compile the forward pass and record XLA's flop count
      (`Summary.xla_flops`, per example).

  Returns:
    The Summary; `total_params` counts the 'params' collection and equals the sum over
    its layers, `total_macs` is the sum of the layers' MACs per example.
  """
  input_shape = tuple(input_shape)
  batch = input_shape[0]
  variables = abstract_variables(model, input_shape, train=train, input_dtype=input_dtype)
  x = jax.ShapeDtypeStruct(input_shape, input_dtype)
  records = _record_calls(model, variables, x, train=train)

  owned = _params_by_path(variables.get('params', {}))
  called = {r['path'] for r in records}
  # Parameters of a module that was never called by itself (its parent used them
  # directly) go to the nearest module that was, so that the rows add up.
  for path in list(owned):
    if path not in called:
      ancestor = path
      while ancestor not in called:
        ancestor = ancestor[:-1]
      owned[ancestor] = owned.get(ancestor, 0) + owned.pop(path)

  layers = []
  for r in records:
    params = owned.pop(r['path'], 0)  # a module called twice owns its params once
    if not r['path'] and not params and not r['macs']:
      continue  # the top-level module is only a container
    layers.append(Layer('/'.join(r['path']), r['type'], r['outputs'], params, r['macs'] // batch))

  total_params = sum(
    math.prod(a.shape) for a in jax.tree_util.tree_leaves(variables.get('params', {}))
  )
  assert total_params == sum(layer.params for layer in layers), 'rows must add up'
  flops = None
  if cross_check:
    flops = xla_flops(model, variables, input_shape, train=train, input_dtype=input_dtype) / batch
  return Summary(
    type(model).__name__,
    input_shape,
    tuple(layers),
    total_params,
    sum(layer.macs for layer in layers),
    flops,
  )


def _format_shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
  """Per-example shapes (batch dimension dropped), e.g. '28x28x6'."""
  return ', '.join('x'.join(map(str, s[1:])) or '()' for s in shapes)


def format_summary(summary: Summary) -> str:
  """A readable table of the summary; the last line is `total_params=... total_macs=...`.

  Args:
    summary: what `summarize` returned.

  Returns:
    The table as one string (no trailing newline).
  """
  header = ('layer', 'type', 'output', 'params', 'MACs')
  rows = [
    (
      layer.path or '(top)',
      layer.type,
      _format_shapes(layer.output_shapes),
      f'{layer.params:,}',
      f'{layer.macs:,}',
    )
    for layer in summary.layers
  ]
  widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

  def line(r):
    left = [r[i].ljust(widths[i]) for i in range(3)]
    right = [r[i].rjust(widths[i]) for i in range(3, 5)]
    return '  '.join(left + right).rstrip()

  rule = '-' * len(line(header))
  shape = 'x'.join(map(str, summary.input_shape[1:]))
  out = [f'{summary.model}, input {shape} (per example)', rule, line(header), rule]
  out += [line(r) for r in rows]
  macs = summary.total_macs
  out += [
    rule,
    f'Total params: {summary.total_params:,}',
    f'Total MACs:   {macs:,} ({macs / 1e9:.4g} GMACs, torchvision\'s "GFLOPS"; '
    f'{macs / 1024**3:.4g} HRNet "GFLOPs", MACs/1024^3)',
  ]
  if summary.xla_flops is not None:
    ratio = summary.xla_flops / macs if macs else float('nan')
    out.append(
      f'XLA flops:    {summary.xla_flops:,.0f} ({ratio:.2f} per MAC; '
      'XLA counts 2 per MAC plus elementwise ops)'
    )
  out.append(f'total_params={summary.total_params} total_macs={macs}')
  return '\n'.join(out)
