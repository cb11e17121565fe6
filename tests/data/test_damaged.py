"""Damaged files: named errors by default, exact skips with `skip_invalid=True`, cached checks."""

import io
import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageFile

from danet_keras.data import file_check, folder_dataset, train_pipeline
from danet_keras.data.pipeline import eval_pipeline

SIZE = (16, 24)
CLASSES = ["a", "b", "c", "d"]
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, quality=90)
    return buffer.getvalue()


def picture(seed):
    """A noisy RGB picture, so that its PNG/JPEG data is long enough to damage in the middle."""
    return np.random.default_rng(seed).integers(0, 256, (*SIZE, 3), dtype=np.uint8)


def ids(seed, high=len(CLASSES), size=SIZE):
    return np.random.default_rng(1000 + seed).integers(0, high, size, dtype=np.uint8)


def damage_png(data):
    """Flips bytes in the middle of the first IDAT chunk's data; signature and IEND intact."""
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    middle = start + length // 2
    damaged = data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 4])
    damaged += data[middle + 4 :]
    assert damaged.startswith(b"\x89PNG") and damaged.endswith(PNG_END) and damaged != data
    return damaged


def damage_jpeg(data):
    """A bogus start-of-frame marker in the middle of the scan; signature and EOI intact."""
    scan = data.index(b"\xff\xda")
    middle = (scan + len(data)) // 2
    damaged = data[:middle] + b"\xff\xc0\x00\x02" + data[middle:]
    assert damaged.startswith(b"\xff\xd8") and damaged.endswith(b"\xff\xd9")
    return damaged


def truncate(data):
    return data[: len(data) * 2 // 3]


class Folder:
    """A `folder` dataset: images/NAME.{png,jpg} and labels/NAME.png."""

    def __init__(self, root):
        self.root = str(root)
        for sub in ("images", "labels"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self.good = []  # (name, image array as TF decodes it, label array), in file order
        self.bad = {}  # file named by the problem -> expected reason

    def write(self, sub, name, data):
        path = os.path.join(self.root, sub, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def pair(self, name, fmt="PNG", image=None, label=None, seed=0):
        """Writes a pair; `image`/`label` turn the encoded bytes into what is written."""
        extension = ".png" if fmt == "PNG" else ".jpg"
        image_bytes, label_array = encode(picture(seed), fmt), ids(seed)
        label_bytes = encode(label_array, "PNG")
        image_path = self.write("images", name + extension, (image or bytes)(image_bytes))
        label_path = None
        if label is not False:
            label_path = self.write("labels", name + ".png", (label or bytes)(label_bytes))
        if image is None and label is None:
            decoded = tf.io.decode_image(image_bytes, channels=3, expand_animations=False).numpy()
            self.good.append((name, decoded, label_array))
        return image_path, label_path

    def bad_image(self, name, reason, fmt="PNG", seed=0, **kwargs):
        self.bad[self.pair(name, fmt, seed=seed, **kwargs)[0]] = reason

    def bad_label(self, name, reason, label, seed=0):
        self.bad[self.pair(name, seed=seed, label=label)[1]] = reason

    def open(self, **kwargs):
        return folder_dataset(self.root, class_names=CLASSES, **kwargs)


def reasons_of(bad):
    counts = {}
    for reason in bad.values():
        counts[reason] = counts.get(reason, 0) + 1
    return counts


@pytest.fixture
def damaged(tmp_path, monkeypatch):
    """12 good pairs (6 PNG, 6 JPEG) among 44 damaged ones, names interleaved."""
    monkeypatch.setenv(file_check.CACHE_ENV, str(tmp_path / "cache"))
    folder = Folder(tmp_path / "data")
    for index in range(12):
        folder.pair(f"{index:02d}_good", "PNG" if index % 2 else "JPEG", seed=index)
    for index in range(4):
        seed, n = 100 + index, f"{index:02d}"
        folder.bad_image(f"{n}_trunc_png", "truncated file", image=truncate, seed=seed)
        folder.bad_image(f"{n}_trunc_jpg", "truncated file", "JPEG", image=truncate, seed=seed)
        folder.bad_image(f"{n}_mid_png", "damaged file", image=damage_png, seed=seed)
        folder.bad_image(f"{n}_mid_jpg", "damaged file", "JPEG", image=damage_jpeg, seed=seed)
        folder.bad_label(f"{n}_mid_label", "damaged file", damage_png, seed=seed)
        text = b"this is not an image\n"
        folder.bad_image(f"{n}_text", "not a PNG or JPEG file", image=lambda _: text)
        folder.bad_image(f"{n}_no_label", "image without label", label=False, seed=seed)
        wrong = encode(ids(seed, size=(SIZE[0], SIZE[1] - 2)), "PNG")
        folder.bad_label(f"{n}_label_size", "size mismatch", lambda _: wrong, seed=seed)
        out_of_range = encode(ids(seed, high=200), "PNG")  # 4..199 are not ids
        folder.bad_label(f"{n}_label_ids", "label value not an id", lambda _: out_of_range)
    for index in range(3):
        n = f"{index:02d}"
        folder.bad_label(f"{n}_trunc_label", "truncated file", truncate, seed=200 + index)
        folder.bad_image(f"{n}_empty_image", "empty file", image=lambda _: b"")
    for index in range(2):
        folder.bad_label(f"{index:02d}_empty_label", "empty file", lambda _: b"")
    folder.good.sort(key=lambda example: example[0])
    assert len(folder.bad) == 44 and len(folder.good) == 12
    return folder


def assert_good_examples(split, folder):
    examples = [(image.numpy(), label.numpy()) for image, label in split.dataset]
    assert len(examples) == len(folder.good)
    for (image, label), (name, want_image, want_label) in zip(examples, folder.good):
        np.testing.assert_array_equal(image, want_image, err_msg=name)
        np.testing.assert_array_equal(label, want_label, err_msg=name)


def assert_skipped(split, folder):
    assert split.skipped.count == len(folder.bad)
    assert split.skipped.reasons == reasons_of(folder.bad)
    assert sorted(split.skipped.files) == sorted(folder.bad)
    for problem in split.skipped.problems:
        name, _, detail = problem.partition(": ")
        assert name in folder.bad and detail


def test_strict_mode_names_a_bad_file(damaged):
    with pytest.raises(ValueError) as error:
        damaged.open()
    message = str(error.value)
    assert "invalid example(s)" in message
    assert any(f"{path}: " in message for path in damaged.bad)


@pytest.mark.parametrize("kind", ["png", "jpg", "label"])
def test_strict_mode_names_a_file_damaged_in_the_middle(tmp_path, monkeypatch, kind):
    monkeypatch.setenv(file_check.CACHE_ENV, str(tmp_path / "cache"))
    folder = Folder(tmp_path / "data")
    folder.pair("a_good")
    if kind == "label":
        folder.bad_label("b_bad", "damaged file", damage_png)
    else:
        fmt, damage = ("PNG", damage_png) if kind == "png" else ("JPEG", damage_jpeg)
        folder.bad_image("b_bad", "damaged file", fmt, image=damage)
    (bad,) = folder.bad
    file_format = "JPEG" if kind == "jpg" else "PNG"
    split = folder.open()  # the headers are fine: only decoding finds the damage
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"{bad}: damaged {file_format} data .*TensorFlow: "
    ):
        list(split.dataset)
    with pytest.raises(ValueError, match=f"{bad}: damaged {file_format} data"):
        folder.open(check_files="full")


def test_skip_invalid_yields_exactly_the_good_examples(damaged):
    split = damaged.open(skip_invalid=True)
    assert len(split) == 12 + 4 * 6 + 3  # only the pipeline finds the rest
    assert_good_examples(split, damaged)
    assert_skipped(split, damaged)
    events = split.skipped.events
    assert_good_examples(split, damaged)  # a second epoch skips the same files again
    assert split.skipped.count == len(damaged.bad) and split.skipped.events > events
    assert "44 example(s) skipped" in split.skipped.summary()


def test_full_check_skips_damaged_files_when_opening(damaged):
    split = damaged.open(skip_invalid=True, check_files="full")
    assert len(split) == 12 + 4  # out-of-range ids are only seen in the pipeline
    assert split.skipped.count == 40
    assert_good_examples(split, damaged)
    assert_skipped(split, damaged)


def test_pipelines_complete_a_pass_over_damaged_data(damaged):
    split = damaged.open(skip_invalid=True)  # headers only: the pipeline meets the damage
    train = train_pipeline(split, (8, 8), batch_size=3, deterministic=True, seed=1)
    batches = [labels.numpy() for _, labels in train]
    assert len(batches) == 4 and all(labels.shape == (3, 8, 8) for labels in batches)
    evaluated = [labels.numpy() for _, labels in eval_pipeline(split, batch_size=5)]
    assert sum(len(labels) for labels in evaluated) == 12
    assert split.skipped.count == len(damaged.bad)


def test_a_file_gone_after_opening_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(file_check.CACHE_ENV, str(tmp_path / "cache"))
    folder = Folder(tmp_path / "data")
    folder.pair("a")
    image, _ = folder.pair("b", seed=1)
    split, skipping = folder.open(), folder.open(skip_invalid=True)
    os.remove(image)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{image}: cannot be read"):
        list(split.dataset)
    assert len(list(skipping.dataset)) == 1 and skipping.skipped.reasons == {"unreadable file": 1}


@pytest.fixture
def decodes(monkeypatch):
    """Counts whole-file checks and PIL decodes (`ImageFile.load`), from any thread."""
    counts = {"checks": 0, "loads": 0}
    lock = threading.Lock()
    check_contents, load = file_check.check_contents, ImageFile.ImageFile.load

    def counted(key, function):
        def wrapper(*args, **kwargs):
            with lock:
                counts[key] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(file_check, "check_contents", counted("checks", check_contents))
    monkeypatch.setattr(ImageFile.ImageFile, "load", counted("loads", load))

    def take():
        taken = dict(counts)
        counts.update(checks=0, loads=0)
        return taken

    return take


def test_full_check_is_cached_until_a_file_changes(tmp_path, monkeypatch, decodes):
    cache = tmp_path / "cache"
    monkeypatch.setenv(file_check.CACHE_ENV, str(cache))
    folder = Folder(tmp_path / "data")
    for index in range(5):
        folder.pair(f"{index}", "PNG" if index % 2 else "JPEG", seed=index)
    folder.bad_image("9", "damaged file", image=damage_png)
    first = folder.open(skip_invalid=True, check_files="full")
    assert len(first) == 5 and first.skipped.count == 1
    assert decodes() == {"checks": 12, "loads": 11}  # the damaged PNG fails its CRC check
    (written,) = os.listdir(cache / "file-checks")
    assert written.endswith(".json")  # and no temporary file is left

    again = folder.open(skip_invalid=True, check_files="full")
    assert decodes() == {"checks": 0, "loads": 0}
    assert again.files == first.files and again.skipped.problems == first.skipped.problems

    with open(os.path.join(folder.root, "images", "0.jpg"), "ab") as f:
        f.write(b"\0")  # new size (a byte after the end marker: still a good JPEG)
    os.utime(os.path.join(folder.root, "labels", "1.png"), ns=(1, 1))  # new mtime only
    damaged = os.path.join(folder.root, "images", "3.png")
    with open(damaged, "rb") as f:
        data = f.read()
    with open(damaged, "wb") as f:
        f.write(damage_png(data))
    third = folder.open(skip_invalid=True, check_files="full")
    assert decodes()["checks"] == 3
    assert len(third) == 4 and third.skipped.count == 2
    assert damaged in third.skipped.files


def test_unwritable_cache_only_costs_the_recheck(tmp_path, monkeypatch, caplog, decodes):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(file_check.CACHE_ENV, str(blocker / "cache"))
    folder = Folder(tmp_path / "data")
    folder.pair("a")
    assert len(folder.open(check_files="full")) == 1
    assert len(folder.open(check_files="full")) == 1
    assert decodes()["checks"] == 4
    assert "could not write the file-check cache" in caplog.text


def test_check_files_refuses_unknown_modes(tmp_path):
    folder = Folder(tmp_path / "data")
    folder.pair("a")
    with pytest.raises(ValueError, match="check_files must be"):
        folder.open(check_files="everything")


def test_full_check_names_labels_tensorflow_would_rescale(tmp_path, monkeypatch):
    monkeypatch.setenv(file_check.CACHE_ENV, str(tmp_path / "cache"))
    folder = Folder(tmp_path / "data")
    folder.pair("a")
    sixteen_bit = io.BytesIO()
    Image.fromarray(ids(0).astype(np.uint16)).save(sixteen_bit, format="PNG")
    folder.bad_label("b", "label not 8-bit", lambda _: sixteen_bit.getvalue())
    jpeg_label = encode(ids(0), "JPEG")
    folder.bad_label("c", "label not PNG", lambda _: jpeg_label)
    split = folder.open(skip_invalid=True, check_files="full")
    assert len(split) == 1
    assert split.skipped.reasons == {"label not 8-bit": 1, "label not PNG": 1}
