"""Shared pieces of the family mappings: the Family record, name helpers, the error."""

import re
from typing import Any, Callable, NamedTuple

Path = tuple[str, ...]


class WeightsError(ValueError):
  """A model that no PyTorch file maps onto: no mapping for its class, or a variant that
  the reference library does not build. The message says which and what has one."""


class Family(NamedTuple):
  """A family's naming: our module path -> PyTorch module name, and layout overrides."""

  source: str  # where its weights come from, for messages
  module_name: Callable[[Any, Path], str]  # (model, our module path) -> torch module
  layouts: Callable[[Any], dict[str, Any]]  # model -> {torch module: kernel layout}


def dotted(name: str) -> str:
  """'layer1_0' -> 'layer1.0': our flax names use '_' where PyTorch indexes with '.'."""
  return re.sub(r'_(\d+)', r'.\1', name)
