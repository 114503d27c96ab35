"""Run infrastructure, below training: what any run (a training run, a
sweep, a corpus being written) stands on.

  workdir.py        a run's folder: lock, history, resume compatibility
  metric_writer.py  metrics.jsonl + TensorBoard, logged one step late
  progress.py       the console progress bar
  divergence.py     a non-finite loss or metric stops the run
"""
