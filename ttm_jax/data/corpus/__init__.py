"""A pretraining corpus on disk: sharded ArrayRecord files of univariate
series, a manifest, and window sources that read only what they need.

Layout of a corpus folder:

  corpus.json              the manifest: format, split rule, chunking, and
                           per source its spec, frequency, counts, DRS
                           copies and shard files (with record counts)
  index.npz                one row per record (O(series), not O(windows)):
                           source, series length, chunk offset, train
                           mean/std, frequency token
  <source>/<name>-00000.array_record ...

A record is one series (or one chunk of a long one): a 4-byte magic, a
length-prefixed JSON header (id, source, freq, start, chunk offset, series
length) and the float32 values. Long series are cut into chunks of at most
`chunk_length` values overlapping by `max_window - 1`, and each window start
belongs to exactly one chunk, so a window read is one small record, and no
window is read twice.

A window's position comes from arithmetic on per-record window counts
(`np.searchsorted` over their cumulative sums); nothing per window is ever
stored. Each series is split in time (train, then valid and test, each
later split starting a context early), and standard-scaled with the mean
and std of its train part (computed once, at conversion).

Modules, one per concern:

  format    the record codec, manifest and index names, the split rule
  sources   source specs (monash .tsf, CSV, synthetic) read series by
            series; registered benchmarks are refused
  writing   `Preparer` and `ShardWriter`: sources into a corpus folder
  reading   `Corpus` and `CorpusWindows`: a corpus folder as window sources
"""
