"""The IDX loader and the validation split."""

import gzip

import numpy as np
import pytest

from search.data import load_split, load_test
from search.data.idx import read_idx
from search.errors import DataError
from tests.conftest import (
    REAL_FASHION,
    needs_real_fashion,
    synthetic_images,
    write_dataset,
    write_idx,
)


def test_read_idx_reads_gzip_and_raw_files(tmp_path):
    images, _ = synthetic_images(5)
    gz = write_idx(tmp_path / "a-idx3-ubyte", images)
    raw = write_idx(tmp_path / "b-idx3-ubyte", images, compress=False)
    assert np.array_equal(read_idx(gz, 3), images)
    assert np.array_equal(read_idx(raw, 3), images)


def test_read_idx_rejects_a_bad_magic_number_naming_the_file(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    write_idx(path, np.zeros(4, np.uint8), compress=False)
    with pytest.raises(DataError, match=r"x-idx1-ubyte.*magic number"):
        read_idx(path, 3)  # a labels file where images are expected


def test_read_idx_rejects_a_truncated_file(tmp_path):
    path = write_idx(tmp_path / "t-idx3-ubyte", synthetic_images(5)[0])
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload[:-100]))
    with pytest.raises(DataError, match="corrupt"):
        read_idx(path, 3)


def test_read_idx_rejects_a_broken_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "g-idx3-ubyte", synthetic_images(5)[0])
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="corrupt"):
        read_idx(path, 3)


def test_load_split_names_the_missing_file_and_the_ways_to_provide_it(tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*--data-dir"):
        load_split("fashion", str(folder))


def test_load_split_rejects_images_and_labels_of_different_counts(tmp_path):
    folder = write_dataset(tmp_path / "d")
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(10, np.uint8))
    with pytest.raises(DataError, match="400 images but 10 labels"):
        load_split("fashion", str(folder))


def test_load_split_is_seeded_disjoint_and_ten_percent(tmp_path):
    folder = str(write_dataset(tmp_path / "d", n_train=500))
    split = load_split("mnist", folder)
    again = load_split("mnist", folder, split_seed=0)
    other = load_split("mnist", folder, split_seed=1)
    assert len(split.x_val) == 50 and len(split.x_train) == 450
    assert np.array_equal(split.y_val, again.y_val), "same seed, same split"
    assert not np.array_equal(split.x_val, other.x_val), "another seed, another split"
    train_rows = {row.tobytes() for row in split.x_train}
    assert not any(row.tobytes() in train_rows for row in split.x_val), "no image in both"


def test_load_split_scales_pixels_to_float32_unit_range(tmp_path):
    split = load_split("fashion", str(write_dataset(tmp_path / "d")))
    assert split.x_train.dtype == np.float32 and split.x_train.shape[1:] == (28, 28, 1)
    assert split.x_train.min() >= 0.0 and split.x_train.max() <= 1.0
    assert split.x_train.max() > 0.5, "bright pixels survive the scaling"


def test_load_split_limit_train_takes_a_subset_before_splitting(tmp_path):
    split = load_split("fashion", str(write_dataset(tmp_path / "d")), limit_train=100)
    assert (len(split.x_train), len(split.x_val)) == (90, 10)


def test_load_split_never_reads_the_test_files(tmp_path):
    folder = write_dataset(tmp_path / "d")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes(b"not an idx file")  # would fail if it were opened
    assert len(load_split("fashion", str(folder)).x_train) == 360
    with pytest.raises(DataError):
        load_test("fashion", str(folder))


@needs_real_fashion
def test_load_split_reads_the_real_fashion_files():
    split = load_split("fashion", str(REAL_FASHION))
    assert (len(split.x_train), len(split.x_val)) == (54_000, 6_000)
    assert sorted(np.unique(split.y_train)) == list(range(10))
    x_test, y_test = load_test("fashion", str(REAL_FASHION))
    assert x_test.shape == (10_000, 28, 28, 1) and len(y_test) == 10_000


def test_load_split_without_data_dir_uses_the_first_local_copy(tmp_path, monkeypatch):
    import search.data.locate

    empty, copy = tmp_path / "empty", write_dataset(tmp_path / "copy")
    empty.mkdir()
    monkeypatch.setattr(search.data.locate, "local_dirs", lambda dataset: (empty, copy))
    split = load_split("mnist", None, limit_train=200)
    assert split.source == str(copy), "the folder without files is skipped"


def test_standardisation_neither_divides_by_zero_nor_blows_up_rare_features():
    """A pixel blank in every training image stays unscaled; one inked in a single image is
    scaled by at least a tenth of its range; an ordinary feature gets its own variance."""
    from search.data import Split

    rng = np.random.default_rng(0)
    x = np.zeros((1000, 3), np.float32)
    x[:, 0] = rng.normal(0.5, 0.1, 1000)  # ordinary
    x[7, 2] = 1.0  # inked once; column 1 is blank throughout
    split = Split(x, np.zeros(1000, int), x[:10], np.zeros(10, int), source="synthetic")
    mean, variance = split.feature_stats
    assert variance[0] == pytest.approx(x[:, 0].var(dtype=np.float64))
    assert variance[1] == 1.0, "a constant feature is left as it is"
    assert variance[2] == pytest.approx((1.0 / 10) ** 2), "std floored at range / 10"
    assert np.sqrt(variance[2]) > np.sqrt(x[:, 2].var()) * 3, "instead of about 0.03"
