r"""Runs IBM's own few-shot recipe, with the reference code (granite-tsfm +
torch + HF Trainer), on one benchmark cell, for comparison with ttm-jax.

This follows `notebooks/hfdemo/tinytimemixer/full_benchmarking/
ttm_full_benchmarking.py` of granite-tsfm (TTM_SPEC.md 4.3): the dataset
from `tsfm_public.load_dataset` (few-shot rows from the start of train),
head dropout 0.7 for ETT, backbone frozen, `optimal_lr_finder`, AdamW +
OneCycleLR over ceil(N / batch) steps per epoch, HF Trainer with per-epoch
evaluation, early stopping (patience 10), best model tested, seed 42.

Dev-only: needs the packages of requirements-dev.txt.

  .venv/bin/python -m benchmarks.reference_few_shot --dataset ettm1 \
      --data_dir ../shared/data/ltsf --workdir /tmp/ref_ettm1 [--seed 42]

Writes W/results.json: test MSE, the learning rate the finder picked, the
per-epoch train and validation losses and the best epoch.
"""

import json
import math
import os
import tempfile
import time

from absl import app
from absl import flags

from benchmarks import common
from configs import common as config_common
from ttm_jax.data import sources

_DATASET = flags.DEFINE_string('dataset', 'ettm1', 'Benchmark name.')
_DATA_DIR = flags.DEFINE_string('data_dir', common.LTSF_DIR,
                                'Folder holding the benchmark file.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', common.R2_CHECKPOINT,
                                  'Checkpoint folder (config.json + weights).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder.',
                               required=True)
_FRACTION = flags.DEFINE_float('fraction', 0.05, 'Few-shot fraction.')
_SEED = flags.DEFINE_integer('seed', 42, 'Seed (set_seed and Trainer).')
_EPOCHS = flags.DEFINE_integer('epochs', 50, 'Maximum epochs.')
_LR = flags.DEFINE_float('lr', 0.0, 'Fixed learning rate; 0 = LR finder.')
_MAX_GRAD_NORM = flags.DEFINE_float(
    'max_grad_norm', 1.0, 'HF Trainer gradient clipping (its default 1.0).')
_TRACK_TEST = flags.DEFINE_bool(
    'track_test', False, 'Also compute the test MSE after every epoch '
    '(analysis only; the Trainer selects on validation).')
_CONTEXT = flags.DEFINE_integer('context', 512, 'Context length.')
_HORIZON = flags.DEFINE_integer('horizon', 96, 'Forecast length.')


def _dataset_root(dataset, data_dir, tmp):
  """tsfm_public.load_dataset wants <root>/<data_path>/<file>; point a
  temporary root at the file wherever our registry finds it."""
  import yaml  # pylint: disable=g-import-not-at-top
  from importlib import resources  # pylint: disable=g-import-not-at-top
  spec = yaml.safe_load(
      (resources.files('tsfm_public.resources.data_config') /
       f'{dataset}.yaml').read_text())
  path = sources.locate(sources.REGISTRY[dataset], data_dir)
  link_dir = os.path.join(tmp, spec['data_path'])
  os.makedirs(link_dir, exist_ok=True)
  os.symlink(os.path.abspath(path), os.path.join(link_dir, spec['data_file']))
  return tmp


def _test_mse(torch, model, dataset, batch_size):
  """MSE over every window, step and channel of `dataset` (eval mode)."""
  was_training = model.training
  model.eval()
  total, count = 0.0, 0
  keys = ('past_values', 'past_observed_mask', 'future_values')
  loader = torch.utils.data.DataLoader(
      dataset, batch_size=batch_size, collate_fn=lambda items: {
          k: torch.stack([torch.as_tensor(it[k]) for it in items])
          for k in keys})
  with torch.no_grad():
    for batch in loader:
      out = model(past_values=batch['past_values'],
                  past_observed_mask=batch['past_observed_mask'])
      error = out.prediction_outputs - batch['future_values']
      total += float(torch.sum(error.double()**2))
      count += error.numel()
  model.train(was_training)
  return total / count


def main(argv):
  del argv
  import torch  # pylint: disable=g-import-not-at-top
  from torch.optim import AdamW  # pylint: disable=g-import-not-at-top
  from torch.optim.lr_scheduler import OneCycleLR  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  import tsfm_public  # pylint: disable=g-import-not-at-top
  from tsfm_public.toolkit.lr_finder import optimal_lr_finder  # pylint: disable=g-import-not-at-top

  dataset = _DATASET.value
  workdir = _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  batch_size = config_common.BATCH_SIZES.get(dataset, 64)
  start = time.time()
  transformers.set_seed(_SEED.value)
  root = _dataset_root(dataset, _DATA_DIR.value, tempfile.mkdtemp())
  train, valid, test = tsfm_public.load_dataset(
      dataset, _CONTEXT.value, _HORIZON.value,
      fewshot_fraction=_FRACTION.value, dataset_root_path=root,
      enable_padding=False)
  overrides = {'head_dropout': 0.7} if dataset in config_common.ETT else {}
  model = tsfm_public.TinyTimeMixerForPrediction.from_pretrained(
      _CHECKPOINT.value, **overrides)
  for param in model.backbone.parameters():
    param.requires_grad = False
  learning_rate = _LR.value
  if not learning_rate:
    learning_rate, model = optimal_lr_finder(model, train,
                                             batch_size=batch_size,
                                             device='cpu')
  out = tempfile.mkdtemp()
  args = transformers.TrainingArguments(
      output_dir=out, learning_rate=learning_rate,
      num_train_epochs=_EPOCHS.value, do_eval=True, eval_strategy='epoch',
      per_device_train_batch_size=batch_size,
      per_device_eval_batch_size=batch_size, dataloader_num_workers=0,
      report_to='none', save_strategy='epoch', logging_strategy='epoch',
      save_total_limit=1, load_best_model_at_end=True,
      metric_for_best_model='eval_loss', greater_is_better=False,
      seed=_SEED.value, max_grad_norm=_MAX_GRAD_NORM.value, use_cpu=True)
  optimizer = AdamW(model.parameters(), lr=learning_rate)
  scheduler = OneCycleLR(optimizer, learning_rate, epochs=_EPOCHS.value,
                         steps_per_epoch=math.ceil(len(train) / batch_size))
  callbacks = [transformers.EarlyStoppingCallback(
      early_stopping_patience=10, early_stopping_threshold=0.0)]
  tracked = []
  if _TRACK_TEST.value:

    class TrackTest(transformers.TrainerCallback):

      def on_evaluate(self, args, state, control, model=None, **kwargs):
        tracked.append(_test_mse(torch, model, test, batch_size))

    callbacks.append(TrackTest())
  trainer = transformers.Trainer(
      model=model, args=args, train_dataset=train, eval_dataset=valid,
      callbacks=callbacks, optimizers=(optimizer, scheduler))
  trainer.train()
  result = trainer.evaluate(test)
  history = trainer.state.log_history
  epochs = [dict(epoch=h['epoch'], val=h['eval_loss'])
            for h in history if 'eval_loss' in h]
  train_losses = [h['loss'] for h in history if 'loss' in h]
  record = dict(
      dataset=dataset, split='test', context_length=_CONTEXT.value,
      prediction_length=_HORIZON.value, fraction=_FRACTION.value,
      mse=float(result['eval_loss']), num_windows=len(test),
      train_windows=len(train), learning_rate=float(learning_rate),
      seed=_SEED.value, max_grad_norm=_MAX_GRAD_NORM.value,
      best_checkpoint=trainer.state.best_model_checkpoint,
      steps_per_epoch=math.ceil(len(train) / batch_size),
      epochs=[dict(e, train=t, **({'test': tracked[i]} if tracked else {}))
              for i, (e, t) in enumerate(zip(epochs, train_losses))],
      seconds=round(time.time() - start, 1),
      torch=torch.__version__, transformers=transformers.__version__)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump([record], f, indent=1)
  print(json.dumps({k: v for k, v in record.items() if k != 'epochs'}))


if __name__ == '__main__':
  app.run(main)
