"""The field's benchmark suites (fev's Chronos Benchmark II and fev-bench,
GIFT-Eval), scored as the suites score them: orchestration above
training (a per-task fine-tune trains).

  tasks.py         the suites' task definitions (files/) and windows
  task_data.py     each task's dataset in the suite's published layout
  task_metrics.py  the suites' own metrics
  benchmark.py     the runner: every task forecast and scored, records
  tables.py        summary.csv, relative.csv/.md, GIFT-Eval's files
"""
