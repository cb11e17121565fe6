"""`DatasetSplit`: one split of a dataset, as records that decode to examples.

A split is kept as cheap *records* (file-path pairs, or encoded TFDS
examples) plus a `decode` function, not as a ready dataset: the pipeline
shuffles and shards the records before anything is read, so each worker of
a multi-worker job reads only its own files and shuffling costs no memory.

Decoding is guarded: an example whose decoding raises (a file that
TensorFlow's decoder refuses, or that cannot be read any more) becomes an
example with a problem that names the file, so it is an error with that
name by default and a counted skip with `skip_invalid=True`; it never
stops a pipeline with a nameless decoder error.
"""

import dataclasses
from typing import Callable, Optional

import tensorflow as tf

from danet_keras.data.classes import DatasetInfo
from danet_keras.data.decode import decode_failure_problem, decode_pair
from danet_keras.data.file_check import CHECK_MODES, check_pairs
from danet_keras.data.problems import SkipTally


@dataclasses.dataclass
class DatasetSplit:
    """One split of a segmentation dataset.

    Attributes:
        info: classes, palette and ignore index (`danet_keras.data.DATASETS`).
        split: split name as the reader was given it.
        num_examples: number of examples (after eagerly skipped ones).
        make_records: `input_context -> tf.data.Dataset` of records, sharded
            for that `tf.distribute.InputContext` when one is given.
        decode_record: `*record -> (image uint8 (H, W, 3), label uint8 (H, W),
            problem tf.string)` for use in `Dataset.map`.
        files: (image_path, label_path) pairs, None for TFDS splits.
        skip_invalid: drop invalid examples (counted in `skipped`) instead of
            raising.
        skipped: `SkipTally` of the examples dropped so far (their count,
            reasons and files).
        explain_failure: `*record -> problem tf.string` naming the file of a
            record whose `decode_record` raised; a generic message when None.
    """

    info: DatasetInfo
    split: str
    num_examples: int
    make_records: Callable
    decode_record: Callable
    files: Optional[tuple] = None
    skip_invalid: bool = False
    skipped: SkipTally = None
    explain_failure: Optional[Callable] = None

    def __post_init__(self):
        if self.skipped is None:
            self.skipped = SkipTally(f"{self.info.name} {self.split}")

    def __len__(self):
        return self.num_examples

    @property
    def num_classes(self):
        return self.info.num_classes

    def records(self, input_context=None):
        """The split's records, sharded by file for `input_context` when given."""
        return self.make_records(input_context)

    def decode(self, records, deterministic=None):
        """Maps records to checked (image, label) examples in parallel.

        Args:
            records: a (possibly shuffled/sharded) dataset from `records()`.
            deterministic: order guarantee of the parallel map (None: the
                `tf.data.Options` default).

        Returns:
            tf.data.Dataset of (image uint8 (H, W, 3), label uint8 (H, W)).
            An invalid example, a damaged file included, raises
            `InvalidArgumentError` whose message names the file, or is
            skipped (and counted in `skipped`) with `skip_invalid=True`.
        """
        dataset = records.map(
            self.decode_guarded, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
        if self.skip_invalid:
            return dataset.filter(self._keep).map(lambda image, label, problem: (image, label))
        return dataset.map(_raise_on_problem)

    def decode_guarded(self, *record):
        """`decode_record`, with a failure turned into a problem (see the module docstring).

        The record is decoded in a one-element dataset that drops it on an
        error (`ignore_errors`); only when nothing comes out is the failure
        explained (`explain_failure`), so a good record costs one nested
        dataset (about 0.1 ms) and no Python.
        """
        decoded = tf.data.Dataset.from_tensors(record).map(self.decode_record).ignore_errors()
        failed = tf.data.Dataset.from_tensors(record).map(self._failed_example)
        return decoded.concatenate(failed).take(1).get_single_element()

    def _failed_example(self, *record):
        if self.explain_failure is not None:
            problem = self.explain_failure(*record)
        else:
            problem = tf.constant(f"{self.info.name} {self.split}: an example could not be decoded")
        return tf.zeros([1, 1, 3], tf.uint8), tf.zeros([1, 1], tf.uint8), problem

    @property
    def dataset(self):
        """All examples in file order: tf.data.Dataset of (image uint8, label uint8)."""
        return self.decode(self.records(), deterministic=True)

    def _keep(self, image, label, problem):
        def record_skip():
            tf.py_function(self._record_skip, [problem], [])
            return tf.constant(False)

        return tf.cond(tf.equal(problem, ""), lambda: tf.constant(True), record_skip)

    def _record_skip(self, problem):
        self.skipped.add(problem.numpy().decode("utf-8", "replace"))


def _raise_on_problem(image, label, problem):
    check = tf.debugging.Assert(tf.equal(problem, ""), [problem], summarize=1)
    with tf.control_dependencies([check]):
        return tf.identity(image), tf.identity(label)


def file_split(info, split, pairs, label_map, skip_invalid=False, skipped=None, read_label=None):
    """A `DatasetSplit` over (image_path, label_path) pairs.

    Args:
        info: `DatasetInfo`.
        split: split name.
        pairs: list of (image_path, label_path), already checked eagerly.
        label_map: (256,) int32 raw value -> train id table.
        skip_invalid: see `DatasetSplit`.
        skipped: the `SkipTally` the eager checks used.
        read_label: optional non-PNG label reader, see `decode_pair`.

    Returns:
        DatasetSplit.
    """
    image_paths = [p[0] for p in pairs]
    label_paths = [p[1] for p in pairs]

    def make_records(input_context):
        records = tf.data.Dataset.from_tensor_slices((image_paths, label_paths))
        if input_context is not None and input_context.num_input_pipelines > 1:
            records = records.shard(
                input_context.num_input_pipelines, input_context.input_pipeline_id
            )
        return records

    def decode_record(image_path, label_path):
        return decode_pair(image_path, label_path, label_map, info.name, read_label=read_label)

    def explain_failure(image_path, label_path):
        return decode_failure_problem(image_path, label_path, read_label=read_label)

    return DatasetSplit(
        info=info,
        split=split,
        num_examples=len(pairs),
        make_records=make_records,
        decode_record=decode_record,
        files=tuple(pairs),
        skip_invalid=skip_invalid,
        skipped=skipped,
        explain_failure=explain_failure,
    )


def checked_file_split(
    info,
    split,
    pairs,
    label_map,
    where,
    skip_invalid=False,
    tally=None,
    check_files=True,
    read_label=None,
):
    """`file_split` after the eager checks of `file_check.check_pairs`.

    Args:
        info, split, pairs, label_map, skip_invalid, read_label: see `file_split`.
        where: split description for messages.
        tally: the `SkipTally` of the pairing step (a new one when None).
        check_files: what to check eagerly: True or "header" reads every
            header (about 1 ms per pair); "full" decodes every file whole
            once (cached by path, size and mtime, see `file_check`), which
            also names files damaged in the middle before training starts;
            False checks nothing eagerly. The in-graph checks and the
            guarded decoding run either way.

    Returns:
        DatasetSplit.
    """
    mode = "header" if check_files is True else check_files or None
    if mode is not None and mode not in CHECK_MODES:
        raise ValueError(
            f"check_files must be True, False, 'header' or 'full', got {check_files!r}"
        )
    tally = tally or SkipTally(f"{info.name} {split}")
    if mode is not None:
        pairs = check_pairs(
            pairs,
            skip_invalid,
            tally,
            where,
            check_label_size=read_label is None,
            full=mode == "full",
        )
    return file_split(info, split, pairs, label_map, skip_invalid, tally, read_label)
