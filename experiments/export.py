r"""Exports a run's checkpoint in the reference's format (config.json +
model.safetensors), while the run goes on or after it ended.

  .venv/bin/python -m experiments.export --workdir W [--which best|latest|STEP] \
      --out DIR [--overwrite]

`best` is the model the run would test (best on validation); `latest` or a
step number takes that training checkpoint (a snapshot of a long
pretraining, say). The folder loads with `ttm_jax.load_pretrained` and the
reference's `from_pretrained`. A folder that holds another checkpoint is
refused unless --overwrite; the export is written beside it and renamed
into place when complete.
"""

from absl import flags

from experiments import common
from ttm_jax.train import snapshots

_WORKDIR = flags.DEFINE_string('workdir', None, 'The run.', required=True)
_WHICH = flags.DEFINE_string('which', 'best', "'best', 'latest' or a step.")
_OUT = flags.DEFINE_string('out', None, 'Folder to write.', required=True)
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace a checkpoint '
                               'already in --out.')


@common.main_wrapper
def main(argv):
  del argv
  snapshots.check_out(_OUT.value, _OVERWRITE.value)  # Before any work.
  common.setup()
  step = snapshots.export_run(_WORKDIR.value, _WHICH.value, _OUT.value,
                              _OVERWRITE.value)
  print(f'Exported step {step} of {_WORKDIR.value} to {_OUT.value}.')


if __name__ == '__main__':
  common.run(main)
