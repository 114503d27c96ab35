"""The field's benchmark suites (fev's Chronos Benchmark II and fev-bench,
GIFT-Eval), scored as the suites score them: orchestration above
training (a per-task fine-tune trains).

  config.py        a benchmark run's config: every field, its checks
  recipes.py       the runner's recipes by name (a registry)
  tasks.py         the suites' task definitions (files/) and windows
  task_data.py     each task's dataset in the suite's published layout,
                   checked where it enters
  known_files.py   data files by size and sha256; the suites' known files
  task_metrics.py  the suites' own metrics
  benchmark.py     the runner: every task forecast and scored, records
                   reused only when made the same way
  tables.py        summary.csv, relative.csv/.md, GIFT-Eval's files
  adapters.py      the suites' own harnesses scoring a forecaster: fev's
                   ForecastingModel, a GluonTS Predictor for GIFT-Eval
                   (needs fev / gluonts, not dependencies: built on use)
"""
