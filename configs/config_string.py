"""The config string of `--config=FILE:STRING`: 'VARIANT,modifier,...', parsed once for all.

A config file declares its variants (at most one is chosen; `default` when none is
given) and its modifiers (each at most once, in any order), e.g. cifar10_resnet.py's
'110_b,val,smoke'. Anything else is a ValueError naming the valid forms, which the entry
point prints as one `error:` line.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ConfigString:
  """A parsed config string: the variant ('' for a file without variants) and modifiers."""

  variant: str
  modifiers: frozenset[str]

  def __contains__(self, modifier: str) -> bool:
    return modifier in self.modifiers


def parse(
  arg: str | None,
  file: str,
  *,
  variants=(),
  default: str = '',
  modifiers=('smoke',),
) -> ConfigString:
  """Splits `arg` on commas into one variant and modifiers.

  Args:
    arg: the config string, e.g. '56,val,smoke'; None or '' = `default` alone.
    file: the config file's name, for the error message.
    variants: the valid variants; empty for a file that has none.
    default: the variant when `arg` names none ('' = the file's unnamed variant).
    modifiers: the valid modifiers.

  Returns:
    The variant and the modifiers.

  Raises:
    ValueError: an unknown word, two variants or a repeated modifier; the message
      names the valid forms.
  """
  words = [w.strip() for w in (arg or '').split(',') if w.strip()]
  chosen = [w for w in words if w in variants]
  mods = [w for w in words if w in modifiers]
  if len(chosen) + len(mods) != len(words) or len(chosen) > 1 or len(set(mods)) != len(mods):
    raise ValueError(
      f"bad config string '{arg}' for {file}: use {usage(variants, default, modifiers)}"
    )
  return ConfigString(chosen[0] if chosen else default, frozenset(mods))


def usage(variants, default: str, modifiers) -> str:
  """The valid forms, e.g. "VARIANT[,val][,smoke] with VARIANT in 20, 56 (default 56)"."""
  optional = ''.join(f'[,{m}]' for m in modifiers)
  if not variants:
    return f'[{optional[2:]}' if modifiers else "'' (no config string)"
  head = 'VARIANT' if default else '[VARIANT]'
  rest = f'default {default}' if default else 'or none'
  return f'{head}{optional} with VARIANT in {", ".join(variants)} ({rest})'
