"""The errors a user can fix (bad flag, config, data, workdir, weights file).

train_lib raises UserError with the fix in its message; the input pipeline and the
models raise their own ValueError subclasses, saying what is wrong with the data or the
weights file. main.py prints any of `USER_ERRORS` as one `error:` line and exits 2.
"""

from input_pipeline.errors import DataError
from models.torch_weights import WeightsError


class UserError(Exception):
  """A problem with the user's input: main.py prints `error: <message>` and exits 2.

  The message names what is wrong and how to fix it, in one line.
  """


USER_ERRORS = (UserError, DataError, WeightsError)
