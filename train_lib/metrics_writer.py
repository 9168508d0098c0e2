"""Writes metrics three ways: console progress, `metrics.jsonl`, TensorBoard events.

Only process 0 writes; the others are silent.
"""

import json
import os
import sys
import time

import jax


def tf_summary_scalar(name: str, value: float) -> None:
  import tensorflow as tf

  tf.summary.scalar(name, value)


def _format_duration(seconds: float) -> str:
  seconds = int(max(0, seconds))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class MetricWriter:
  """Appends one JSON object per call to DIR/metrics.jsonl and mirrors it elsewhere."""

  def __init__(self, workdir: str, total_steps: int):
    self._active = jax.process_index() == 0
    self._total = total_steps
    self._start = time.time()
    self._start_step = None
    self._tb = None
    if self._active:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      import tensorflow as tf

      self._tb = tf.summary.create_file_writer(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
    """Records `metrics` of `split` ('train', 'test', 'validation') at `step`."""
    if not self._active:
      return
    row = {'step': int(step), 'split': split, **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(row) + '\n')
    self._jsonl.flush()
    with self._tb.as_default(step=int(step)):
      for k, v in metrics.items():
        tf_summary_scalar(f'{split}/{k}', float(v))
    self._tb.flush()
    print(self._progress_line(step, split, metrics), flush=True)

  def _progress_line(self, step, split, metrics) -> str:
    parts = [f'step {step}/{self._total}', split]
    for k, v in metrics.items():
      if k == 'images_per_sec':
        parts.append(f'{v:,.0f} img/s')
      elif k == 'learning_rate':
        parts.append(f'lr {v:.4g}')
      else:
        parts.append(f'{k} {v:.4f}')
    if split == 'train':
      if self._start_step is None:
        self._start_step, self._start = step, time.time()
      elif step > self._start_step:
        rate = (step - self._start_step) / (time.time() - self._start)
        parts.append(f'ETA {_format_duration((self._total - step) / rate)}')
    return ' | '.join(parts)

  def close(self) -> None:
    if self._active:
      self._jsonl.close()
      self._tb.close()


def info(message: str) -> None:
  """A progress message for people, from process 0 only."""
  if jax.process_index() == 0:
    print(message, file=sys.stdout, flush=True)
