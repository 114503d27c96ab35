"""What a run leaves besides its checkpoints and metrics: results.json (an
earlier one kept in history/), the tested model in the reference's format
(export/) and a plot of test forecasts (forecast.png). Process 0 writes."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Sequence

import jax

from ttm_jax.train import snapshots
from ttm_jax.train import plots

Artifact = Callable[[Any], None]  # Called with the tested variables.


def results_json(workdir, records: Sequence[Dict[str, Any]]) -> None:
  """Writes the evaluation records (a rerun's earlier file moves to
  history/)."""
  workdir.keep_previous('results.json')
  with open(workdir.file('results.json'), 'w') as f:
    json.dump(list(records), f, indent=2)


def model_artifacts(config, model, data, workdir: str) -> List[Artifact]:
  """The export and the plot a model's run writes, as its config asks.

  The static categoricals' vocabulary (`data.categorical_vocab`) and the
  datasets a prepared corpus fed the run (`data.pretraining`) go with the
  export, and into the workdir now (for `experiments.export`), the
  vocabulary after a check that the model embeds every value."""
  out, vocabulary = [], data.categorical_vocab
  if vocabulary is not None:
    vocabulary.check_model(model.config.categorical_vocab_size_list)
    if jax.process_index() == 0:
      vocabulary.save(workdir)
  if data.pretraining is not None and jax.process_index() == 0:
    snapshots.save_pretraining(workdir, data.pretraining)
  if config.export:
    # Renamed into place when complete: a sweep counts a stage with an
    # export/ as done.
    out.append(lambda variables: snapshots.save_pretrained(
        os.path.join(workdir, 'export'), model.config,
        jax.device_get(variables), vocabulary, data.pretraining))
  if config.plot:
    out.append(lambda variables: plots.plot_forecasts(
        os.path.join(workdir, 'forecast.png'), model.module,
        jax.device_get(variables), data.test, model.config,
        title=f'{data.name} test windows'))
  return out


def write(workdir, records, artifacts: Sequence[Artifact],
          variables) -> None:
  if jax.process_index() != 0:
    return
  results_json(workdir, records)
  for artifact in artifacts:
    artifact(variables)
