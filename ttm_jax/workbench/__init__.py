"""The research workbench: orchestration around runs, kept out of the
package root.

  sweeps.py         declared grids of ordinary runs, planned and run
  sweep_tables.py   a sweep's results.csv, results.md and plot.png
  workdir.py        a run's folder: lock, history, resume compatibility
  metric_writer.py  metrics.jsonl + TensorBoard, logged one step late
  progress.py       the console progress bar
  plots.py          forecast-vs-truth plots of a model
"""
