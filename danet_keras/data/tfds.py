"""Segmentation datasets from TensorFlow Datasets, read without downloading.

    "cityscapes/semantic_segmentation"   image_left, segmentation_label (label ids)
    "scene_parse150"                     image, annotation (ADE20K ids 0..150)
    "oxford_iiit_pet"                    image, segmentation_mask (trimap 1, 2, 3)

Built datasets are read from `data_dir` with `download=False` by default
(Cityscapes cannot be downloaded by TFDS anyway: its archives must be
placed in the manual directory). Images and labels are kept encoded until
the pipeline's parallel map decodes them, so shuffling and sharding
records is cheap; with an `input_context` TFDS shards by file.
"""

from danet_keras.data import labels
from danet_keras.data.classes import dataset_info
from danet_keras.data.decode import decode_failure_problem, decode_pair
from danet_keras.data.registry import tfds_sources
from danet_keras.data.split import DatasetSplit

# TFDS name -> (dataset info key, image feature, label feature, raw-id label map), from the
# registry's `tfds` sources.
TFDS_DATASETS = {
    name: (
        entry.name,
        source.image_feature,
        source.label_feature,
        getattr(labels, source.label_map),
    )
    for name, entry in tfds_sources().items()
    for source in [entry.tfds]
}


def tfds_dataset(
    name, split="train", data_dir=None, download=False, shuffle_files=False, skip_invalid=False
):
    """Opens a split of a TFDS segmentation dataset.

    Args:
        name: a key of `TFDS_DATASETS` (a version may follow, e.g.
            "scene_parse150:1.0.0").
        split: TFDS split string ("train", "validation", "test", "train[:10%]", ...).
        data_dir: where the built dataset lives (TFDS default when None).
        download: let TFDS download and build it when missing.
        shuffle_files: shuffle the order of the record files.
        skip_invalid: drop invalid examples with a warning instead of raising.

    Returns:
        `DatasetSplit` of (image uint8 (H, W, 3), label uint8 (H, W)).
    """
    # deferred: tensorflow_datasets only for "tfds:" names (optional; its import takes seconds)
    import tensorflow_datasets as tfds

    base = name.split(":")[0]
    if base not in TFDS_DATASETS:
        raise ValueError(f"unsupported TFDS dataset {name!r}; supported: {sorted(TFDS_DATASETS)}")
    info_key, image_key, label_key, label_map = TFDS_DATASETS[base]
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    elif not builder.is_prepared():
        raise FileNotFoundError(
            f"TFDS dataset {name} is not built in {builder.data_dir}; build it there or pass "
            "download=True"
        )
    num_examples = builder.info.splits[split].num_examples
    if num_examples == 0:
        raise ValueError(f"TFDS dataset {name} split {split!r} is empty")
    skip_decoding = {image_key: tfds.decode.SkipDecoding(), label_key: tfds.decode.SkipDecoding()}

    def make_records(input_context):
        read_config = tfds.ReadConfig(input_context=input_context)
        examples = builder.as_dataset(
            split=split,
            shuffle_files=shuffle_files,
            decoders=skip_decoding,
            read_config=read_config,
        )
        return examples.map(lambda e: (e[image_key], e[label_key]))

    source = f"tfds {name} {split} example"

    def decode_record(image_bytes, label_bytes):
        return decode_pair(
            source,
            source,
            label_map,
            info_key,
            image_contents=image_bytes,
            label_contents=label_bytes,
        )

    def explain_failure(image_bytes, label_bytes):
        return decode_failure_problem(source, source, image_bytes, label_bytes)

    return DatasetSplit(
        info=dataset_info(info_key),
        split=split,
        num_examples=num_examples,
        make_records=make_records,
        decode_record=decode_record,
        skip_invalid=skip_invalid,
        explain_failure=explain_failure,
    )
