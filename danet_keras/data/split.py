"""`DatasetSplit`: one split of a dataset, as records that decode to examples.

A split is kept as cheap *records* (file-path pairs, or encoded TFDS
examples) plus a `decode` function, not as a ready dataset: the pipeline
shuffles and shards the records before anything is read, so each worker of
a multi-worker job reads only its own files and shuffling costs no memory.
"""

import dataclasses
from typing import Callable, Optional

from danet_keras.data.image_io import SkipTally, decode_pair
from danet_keras.data.labels import DatasetInfo


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
        skipped: `SkipTally` of the examples dropped so far.
    """

    info: DatasetInfo
    split: str
    num_examples: int
    make_records: Callable
    decode_record: Callable
    files: Optional[tuple] = None
    skip_invalid: bool = False
    skipped: SkipTally = None

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
            An invalid example raises `InvalidArgumentError` whose message
            names the file, or is skipped with `skip_invalid=True`.
        """
        import tensorflow as tf

        dataset = records.map(
            self.decode_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
        if self.skip_invalid:
            return dataset.filter(self._keep).map(lambda image, label, problem: (image, label))
        return dataset.map(_raise_on_problem)

    @property
    def dataset(self):
        """All examples in file order: tf.data.Dataset of (image uint8, label uint8)."""
        return self.decode(self.records(), deterministic=True)

    def _keep(self, image, label, problem):
        import tensorflow as tf

        def record_skip():
            tf.py_function(lambda p: self.skipped.add(p.numpy().decode()), [problem], [])
            return tf.constant(False)

        return tf.cond(tf.equal(problem, ""), lambda: tf.constant(True), record_skip)


def _raise_on_problem(image, label, problem):
    import tensorflow as tf

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
        import tensorflow as tf

        records = tf.data.Dataset.from_tensor_slices((image_paths, label_paths))
        if input_context is not None and input_context.num_input_pipelines > 1:
            records = records.shard(
                input_context.num_input_pipelines, input_context.input_pipeline_id
            )
        return records

    def decode_record(image_path, label_path):
        return decode_pair(image_path, label_path, label_map, info.name, read_label=read_label)

    return DatasetSplit(
        info=info,
        split=split,
        num_examples=len(pairs),
        make_records=make_records,
        decode_record=decode_record,
        files=tuple(pairs),
        skip_invalid=skip_invalid,
        skipped=skipped,
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
    """`file_split` after the eager header checks of `image_io.check_pairs`.

    Args:
        info, split, pairs, label_map, skip_invalid, read_label: see `file_split`.
        where: split description for messages.
        tally: the `SkipTally` of the pairing step (a new one when None).
        check_files: read every header eagerly (about 1 ms per pair); the
            in-graph checks run either way.

    Returns:
        DatasetSplit.
    """
    from danet_keras.data.image_io import check_pairs

    tally = tally or SkipTally(f"{info.name} {split}")
    if check_files:
        pairs = check_pairs(pairs, skip_invalid, tally, where, check_label_size=read_label is None)
    return file_split(info, split, pairs, label_map, skip_invalid, tally, read_label)
