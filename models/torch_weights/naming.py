"""Shared pieces of the family mappings: the Family record and name helpers."""

import re
from typing import Any, Callable, NamedTuple

Path = tuple[str, ...]


class Family(NamedTuple):
  """A family's naming: our module path -> PyTorch module name, and layout overrides."""

  source: str  # where its weights come from, for messages
  module_name: Callable[[Any, Path], str]  # (model, our module path) -> torch module
  layouts: Callable[[Any], dict[str, Any]]  # model -> {torch module: kernel layout}


def dotted(name: str) -> str:
  """'layer1_0' -> 'layer1.0': our flax names use '_' where PyTorch indexes with '.'."""
  return re.sub(r'_(\d+)', r'.\1', name)
