"""The research workbench: orchestration above training, kept out of the
package root.

  sweeps.py         declared grids of ordinary runs, planned and run
  sweep_tables.py   a sweep's results.csv, results.md and plot.png
"""
