"""The error type of data problems a user can fix."""


class DataError(ValueError):
  """A missing or bad dataset, file or archive, or an input option the data can't take.

  The message says what is wrong and how to fix it (the config field to set, the files to
  get), in one line; the entry point prints it.
  """
