"""The error type for mistakes a user can fix (bad flag, config, data, workdir)."""


class UserError(Exception):
  """A problem with the user's input: main.py prints `error: <message>` and exits 2.

  The message names what is wrong and how to fix it, in one line.
  """
