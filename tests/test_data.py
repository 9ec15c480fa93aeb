"""Data sets: the digits split, the input quantizer, IDX and .npz loading and their errors."""

from __future__ import annotations

import gzip
from fractions import Fraction

import numpy as np
import pytest

from intrain.data import (
    Dataset,
    load_dataset,
    load_digits,
    load_idx,
    load_idx_dir,
    load_npz,
    quantize_inputs,
    split_test_mask,
)
from intrain.errors import DataError

# ------------------------------------------------------------------------------------------------
# digits and the split


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_digits_shapes(digits):
    assert digits.n_train + digits.n_test == 1797
    assert digits.n_features == 64
    assert digits.n_classes == 10
    assert digits.x_train.shape == (digits.n_train, 64)
    assert digits.x_test.shape == (digits.n_test, 64)
    assert digits.y_train.dtype == np.int64 and digits.y_test.dtype == np.int64
    assert (digits.lo, digits.hi) == (0.0, 16.0)
    assert digits.x_train.min() == 0 and digits.x_train.max() == 16
    assert 340 <= digits.n_test <= 370


def load_digits_labels():
    from sklearn.datasets import load_digits as sk_load_digits

    return sk_load_digits().target


def test_digits_split_is_the_documented_rule(digits):
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x, y = bunch.data.astype(np.uint8), bunch.target
    test_rows, train_rows = [], []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        test_rows.append(rows[4::5])
        train_rows.append(np.setdiff1d(rows, rows[4::5]))
    test_rows = np.sort(np.concatenate(test_rows))
    train_rows = np.sort(np.concatenate(train_rows))
    assert np.intersect1d(test_rows, train_rows).size == 0
    assert len(test_rows) + len(train_rows) == 1797
    np.testing.assert_array_equal(digits.x_test, x[test_rows])
    np.testing.assert_array_equal(digits.y_test, y[test_rows])
    np.testing.assert_array_equal(digits.x_train, x[train_rows])
    np.testing.assert_array_equal(digits.y_train, y[train_rows])


def test_digits_split_disjoint_stratified_deterministic(digits):
    again = load_digits()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(digits, name), getattr(again, name))
    # Every class is in the test set, with a fifth (rounded down) of its samples.
    test_counts = np.bincount(digits.y_test, minlength=10)
    all_counts = test_counts + np.bincount(digits.y_train, minlength=10)
    np.testing.assert_array_equal(test_counts, all_counts // 5)
    assert (test_counts > 0).all()
    mask = split_test_mask(load_digits_labels())
    assert mask.dtype == bool and mask.sum() == digits.n_test


def test_split_mask_by_hand():
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1])
    # Class 0 sits at 0, 2, 3, 5, 6, 7: its 5th is row 6. Class 1 at 1, 4, 8, 9, 10, 11: row 10.
    np.testing.assert_array_equal(np.flatnonzero(split_test_mask(y)), [6, 10])
    # A third: every 3rd of each class: class 0 rows 3, 7; class 1 rows 8, 11.
    np.testing.assert_array_equal(np.flatnonzero(split_test_mask(y, Fraction(1, 3))),
                                  [3, 7, 8, 11])
    np.testing.assert_array_equal(split_test_mask(y, 1 / 3), split_test_mask(y, Fraction(1, 3)))


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "a lot"])
def test_split_rejects_bad_fraction(bad):
    with pytest.raises(DataError, match="test_fraction"):
        split_test_mask(np.arange(10) % 2, bad)


def test_digits_other_fraction():
    d = load_digits(test_fraction=0.5)
    counts = np.bincount(d.y_test) + np.bincount(d.y_train)
    np.testing.assert_array_equal(np.bincount(d.y_test), counts // 2)


# ------------------------------------------------------------------------------------------------
# quantize_inputs


def test_quantize_digits_values():
    v = np.arange(17)
    expected = np.clip(16 * v - 128, -127, 127)
    np.testing.assert_array_equal(quantize_inputs(v, 0, 16), expected)
    np.testing.assert_array_equal(quantize_inputs(v.astype(np.uint8), 0.0, 16.0), expected)
    np.testing.assert_array_equal(quantize_inputs(v.astype(np.float64), 0, 16), expected)
    assert quantize_inputs(v, 0, 16).dtype == np.int64


def test_quantize_digits_dataset(digits):
    a_train, a_test = digits.quantize(8)
    np.testing.assert_array_equal(a_train, np.clip(16 * digits.x_train.astype(int) - 128,
                                                   -127, 127))
    assert a_test.shape == digits.x_test.shape


# lo=0, hi=16, bits=3: x_real * 4 = (v - 8) / 2, a tie at every odd v.
#  v:    0    1     2   3     4   5     6   7     8  9    10  11   12  13   14  15   16
#  x*4: -4  -3.5   -3 -2.5   -2 -1.5   -1 -0.5   0  0.5   1  1.5   2  2.5   3  3.5   4
TIES_EXPECTED = [-3, -3, -3, -2, -2, -2, -1, 0, 0, 0, 1, 2, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int16, np.float64, np.float32])
def test_quantize_ties_round_half_to_even(dtype):
    v = np.arange(17).astype(dtype)
    assert quantize_inputs(v, 0, 16, bits=3).tolist() == TIES_EXPECTED


def test_quantize_ties_two_bits():
    # lo=0, hi=8, bits=2: x_real * 2 = (v - 4) / 2; v=3 -> -0.5 -> 0, v=5 -> 0.5 -> 0.
    assert quantize_inputs(np.arange(9), 0, 8, bits=2).tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1]


def _reference(v, lo, hi, bits):
    lo, hi, half = Fraction(lo), Fraction(hi), 2 ** (bits - 1)
    q = round((2 * (Fraction(int(v)) - lo) - (hi - lo)) * half / (hi - lo))  # half to even
    return max(-(half - 1), min(half - 1, q))


@pytest.mark.parametrize("lo,hi,bits", [
    (0.5, 15.25, 8), (-3, 5, 4), (-7, 11, 5), (0.1, 0.7, 3), (0, 3, 2), (-1000, 999, 16),
    (-(2**61), 2**61, 16),
])
def test_quantize_integer_data_is_exact(lo, hi, bits):
    rng = np.random.default_rng(bits)
    span = max(int(hi - lo), 2)
    x = rng.integers(int(lo) - span, int(hi) + span, size=300)
    expected = [_reference(v, lo, hi, bits) for v in x]
    assert quantize_inputs(x, lo, hi, bits).tolist() == expected


@pytest.mark.parametrize("bits", [2, 3, 5, 8, 12, 16])
def test_quantize_range(bits):
    rng = np.random.default_rng(bits)
    limit = 2 ** (bits - 1) - 1
    for x, lo, hi in [(rng.normal(size=500) * 10, -3.0, 4.0),
                      (rng.integers(-50, 300, size=500), 0, 255),
                      (np.array([-1e300, 1e300, 0.0]), -1.0, 1.0)]:
        q = quantize_inputs(x, lo, hi, bits)
        assert q.dtype == np.int64
        assert q.min() >= -limit and q.max() <= limit
    assert quantize_inputs(np.array([0, 255]), 0, 255, bits).tolist() == [-limit, limit]


def test_quantize_rejects_bad_input():
    with pytest.raises(DataError, match="NaN"):
        quantize_inputs(np.array([0.0, np.nan]), 0, 1)
    with pytest.raises(DataError, match="lo < hi"):
        quantize_inputs(np.arange(3), 2, 2)
    with pytest.raises(DataError):
        quantize_inputs(np.array(["a"]), 0, 1)
    with pytest.raises(ValueError, match="bits"):
        quantize_inputs(np.arange(3), 0, 2, bits=1)


# ------------------------------------------------------------------------------------------------
# IDX files


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    arr = np.asarray(arr)
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def make_idx_dir(directory, n_train=12, n_test=5, rows=3, cols=4, gz=False, dotted=False):
    rng = np.random.default_rng(7)
    arrays = {
        "train-images": rng.integers(0, 256, size=(n_train, rows, cols)),
        "train-labels": rng.integers(0, 10, size=n_train),
        "t10k-images": rng.integers(0, 256, size=(n_test, rows, cols)),
        "t10k-labels": rng.integers(0, 10, size=n_test),
    }
    for stem, arr in arrays.items():
        kind = "idx3" if arr.ndim == 3 else "idx1"
        name = f"{stem}.{kind}-ubyte" if dotted else f"{stem}-{kind}-ubyte"
        data = idx_bytes(arr)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True),
                                       (True, True)])
def test_idx_round_trip(tmp_path, gz, dotted):
    arrays = make_idx_dir(tmp_path, gz=gz, dotted=dotted)
    d = load_idx_dir(tmp_path)
    np.testing.assert_array_equal(d.x_train, arrays["train-images"].reshape(12, 12))
    np.testing.assert_array_equal(d.y_train, arrays["train-labels"])
    np.testing.assert_array_equal(d.x_test, arrays["t10k-images"].reshape(5, 12))
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels"])
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert (d.lo, d.hi) == (0.0, 255.0)
    assert d.n_features == 12
    assert load_dataset(str(tmp_path)).n_train == 12


def test_idx_single_file(tmp_path):
    arr = np.arange(24).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(load_idx(path), arr)


def _break(directory, name, data: bytes):
    (directory / name).write_bytes(data)
    return name


def _load_error(directory) -> str:
    with pytest.raises(DataError) as info:
        load_idx_dir(directory)
    assert info.value.__cause__ is None
    return str(info.value)


def test_idx_wrong_magic(tmp_path):
    make_idx_dir(tmp_path)
    data = bytearray(idx_bytes(np.zeros((12, 3, 4))))
    data[0] = 0x1F
    name = _break(tmp_path, "train-images-idx3-ubyte", bytes(data))
    msg = _load_error(tmp_path)
    assert name in msg and "magic" in msg


def test_idx_wrong_dtype_code(tmp_path):
    make_idx_dir(tmp_path)
    name = _break(tmp_path, "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(5), code=0x0D))
    msg = _load_error(tmp_path)
    assert name in msg and "0x0D" in msg


def test_idx_wrong_dims(tmp_path):
    make_idx_dir(tmp_path)
    name = _break(tmp_path, "train-labels-idx1-ubyte", idx_bytes(np.zeros((12, 1))))
    msg = _load_error(tmp_path)
    assert name in msg and "dimension" in msg


def test_idx_truncated_payload(tmp_path):
    make_idx_dir(tmp_path)
    name = _break(tmp_path, "train-images-idx3-ubyte", idx_bytes(np.zeros((12, 3, 4)))[:-1])
    msg = _load_error(tmp_path)
    assert name in msg and "truncated" in msg


def test_idx_truncated_header(tmp_path):
    make_idx_dir(tmp_path)
    name = _break(tmp_path, "train-images-idx3-ubyte", idx_bytes(np.zeros((12, 3, 4)))[:9])
    msg = _load_error(tmp_path)
    assert name in msg and "truncated" in msg


def test_idx_trailing_bytes(tmp_path):
    make_idx_dir(tmp_path)
    name = _break(tmp_path, "t10k-images-idx3-ubyte", idx_bytes(np.zeros((5, 3, 4))) + b"\0\0")
    msg = _load_error(tmp_path)
    assert name in msg and "2 unexpected bytes" in msg


def test_idx_count_mismatch(tmp_path):
    make_idx_dir(tmp_path)
    name = _break(tmp_path, "train-labels-idx1-ubyte", idx_bytes(np.zeros(11)))
    msg = _load_error(tmp_path)
    assert name in msg and "train-images-idx3-ubyte" in msg and "11 labels" in msg


def test_idx_missing_file(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    msg = _load_error(tmp_path)
    assert "t10k-labels-idx1-ubyte" in msg and "no such file" in msg


def test_idx_corrupt_gzip(tmp_path):
    make_idx_dir(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    msg = _load_error(tmp_path)
    assert path.name in msg and "gzip" in msg
    path.write_bytes(b"this is not gzip at all")
    msg = _load_error(tmp_path)
    assert path.name in msg and "gzip" in msg


def test_idx_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_idx_dir(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------
# .npz files


def _npz_error(path, match) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_npz(path)
    assert path.name in str(info.value)
    assert info.value.__cause__ is None
    return str(info.value)


def test_npz_round_trip_with_test_arrays(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 2, 3)), rng.integers(0, 4, size=20)
    xt, yt = rng.normal(size=(6, 2, 3)), np.array([0, 1, 2, 3, 4, 0])
    path = tmp_path / "set.npz"
    np.savez(path, x=x, y=y, x_test=xt, y_test=yt)
    d = load_dataset(str(path))
    np.testing.assert_array_equal(d.x_train, x.reshape(20, 6))
    np.testing.assert_array_equal(d.y_train, y)
    np.testing.assert_array_equal(d.x_test, xt.reshape(6, 6))
    np.testing.assert_array_equal(d.y_test, yt)
    assert (d.lo, d.hi) == (x.min(), x.max())
    assert d.n_classes == 5  # the largest label is in the test set only
    assert d.y_train.dtype == np.int64


def test_npz_split_and_ranges(tmp_path):
    y = np.arange(30) % 3
    path = tmp_path / "u8.npz"
    np.savez(path, x=np.arange(30, dtype=np.uint8).reshape(30, 1) + 10, y=y)
    d = load_npz(path)
    assert (d.lo, d.hi) == (0.0, 255.0)
    np.testing.assert_array_equal(np.sort(d.x_test[:, 0] - 10),
                                  np.flatnonzero(split_test_mask(y)))
    assert d.n_test == 6 and d.n_train == 24
    path = tmp_path / "i16.npz"
    np.savez(path, x=np.arange(30, dtype=np.int16) - 7, y=y.astype(float))
    d = load_npz(path)
    assert (d.lo, d.hi) == (-7.0, 22.0) and d.n_features == 1
    assert d.y_train.dtype == np.int64


def test_npz_missing_y(tmp_path):
    path = tmp_path / "noy.npz"
    np.savez(path, x=np.zeros((3, 2)))
    _npz_error(path, "no array 'y'")


def test_npz_only_one_test_array(tmp_path):
    path = tmp_path / "half.npz"
    np.savez(path, x=np.arange(6.0), y=np.arange(6), x_test=np.arange(2.0))
    _npz_error(path, "y_test")


def test_npz_mismatched_lengths(tmp_path):
    path = tmp_path / "len.npz"
    np.savez(path, x=np.arange(6.0).reshape(3, 2), y=np.arange(4))
    _npz_error(path, "3 samples")
    np.savez(path, x=np.arange(6.0), y=np.arange(6), x_test=np.arange(2.0), y_test=[0])
    _npz_error(path, "x_test")


def test_npz_string_and_bool_and_object_inputs(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.array(["a", "b"]), y=np.array([0, 1]))
    _npz_error(path, "integers or floating")
    np.savez(path, x=np.array([True, False]), y=np.array([0, 1]))
    _npz_error(path, "bool")
    np.savez(path, x=np.array([{}, 1], dtype=object), y=np.array([0, 1]))
    _npz_error(path, "objects")


def test_npz_nan(tmp_path):
    path = tmp_path / "nan.npz"
    np.savez(path, x=np.array([0.0, np.nan, 1.0]), y=np.array([0, 1, 0]))
    _npz_error(path, "NaN")
    np.savez(path, x=np.array([0.0, 1.0, 2.0]), y=np.array([0, np.inf, 0]))
    _npz_error(path, "NaN")


def test_npz_bad_labels(tmp_path):
    path = tmp_path / "lab.npz"
    np.savez(path, x=np.arange(3.0), y=np.array([0, -1, 2]))
    _npz_error(path, "negative")
    np.savez(path, x=np.arange(3.0), y=np.array([0, 0.5, 2]))
    _npz_error(path, "whole numbers")
    np.savez(path, x=np.arange(3.0), y=np.array([[0], [1], [2]]))
    _npz_error(path, "1-D")


def test_npz_constant_inputs(tmp_path):
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.full(5, 3, dtype=np.int32), y=np.arange(5))
    _npz_error(path, "range")


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello, I am not an archive\n")
    _npz_error(path, "not a readable .npz")
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    _npz_error(path, "not a readable .npz")
    with path.open("wb") as f:
        np.save(f, np.arange(3))
    _npz_error(path, ".npy")


def test_npz_missing_file(tmp_path):
    _npz_error(tmp_path / "absent.npz", "no such file")


# ------------------------------------------------------------------------------------------------
# load_dataset and Dataset


def test_load_dataset_default_is_digits(digits):
    d = load_dataset()
    assert d.name == "digits" and d.n_test == digits.n_test


def test_load_dataset_rejects_other_specs(tmp_path):
    with pytest.raises(DataError, match="digits") as info:
        load_dataset(str(tmp_path / "mnist"))
    assert "mnist" in str(info.value)
    other = tmp_path / "data.csv"
    other.write_text("1,2\n")
    with pytest.raises(DataError, match=".npz"):
        load_dataset(str(other))


def test_dataset_validates():
    x, y = np.zeros((4, 2), dtype=np.uint8), np.arange(4, dtype=np.int64)
    d = Dataset("t", x, y, x[:1], y[:1], 0.0, 1.0)
    assert (d.n_train, d.n_test, d.n_features, d.n_classes) == (4, 1, 2, 4)
    with pytest.raises(DataError):
        Dataset("t", x, y[:3], x, y, 0.0, 1.0)
    with pytest.raises(DataError):
        Dataset("t", x, y, x, y, 1.0, 1.0)
    with pytest.raises(DataError):
        Dataset("t", x, y.astype(np.int32), x, y, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------
# Image shapes: kept by every source, folded for a network that starts with a convolution
def test_images_keep_their_shape(tmp_path, digits):
    assert digits.shape == (1, 8, 8)
    a_train, a_test = digits.quantize(8, (1, 8, 8))
    flat_train, _ = digits.quantize(8)
    assert a_train.shape == (digits.n_train, 1, 8, 8) and a_test.shape == (digits.n_test, 1, 8, 8)
    np.testing.assert_array_equal(a_train.reshape(digits.n_train, 64), flat_train)
    make_idx_dir(tmp_path, rows=3, cols=4)
    assert load_idx_dir(tmp_path).shape == (1, 3, 4)
    rng = np.random.default_rng(0)
    for x, shape in ((rng.normal(size=(10, 5, 6)), (1, 5, 6)),
                     (rng.normal(size=(10, 2, 3, 4)), (2, 3, 4)), (rng.normal(size=(10, 7)), None)):
        path = tmp_path / f"x{x.ndim}.npz"
        np.savez(path, x=x, y=np.arange(10) % 2)
        d = load_npz(path)
        assert d.shape == shape and d.n_features == x[0].size
        if shape:  # (n, C, H, W) in the file's own order
            np.testing.assert_array_equal(d.quantize(8, shape)[0],
                                          quantize_inputs(x, d.lo, d.hi)[~split_test_mask(
                                              np.arange(10) % 2)].reshape(-1, *shape))


def test_flat_data_fold_into_the_networks_shape_and_mismatches_are_named(tmp_path, digits):
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.arange(120).reshape(10, 12), y=np.arange(10) % 2)
    flat = load_npz(path)
    assert flat.quantize(8, (3, 2, 2))[0].shape == (8, 3, 2, 2)
    with pytest.raises(DataError, match="has 12 values per sample; the network's input shape "
                                        "1x4x4 needs 16"):
        flat.quantize(8, (1, 4, 4))
    with pytest.raises(DataError, match="digits holds 1x8x8 images, not the network's input "
                                        "shape 1x28x28"):
        digits.quantize(8, (1, 28, 28))
    with pytest.raises(DataError, match="digits holds 1x8x8 images, not .* 4x4x4"):
        digits.quantize(8, (4, 4, 4))
    np.savez(path, x=np.arange(24).reshape(4, 2, 3), y=np.arange(4), x_test=np.ones((2, 3, 2)),
             y_test=np.arange(2))
    _npz_error(path, r"'x' has samples of shape \(2, 3\) but 'x_test' has \(3, 2\)")
    with pytest.raises(DataError, match="image shape"):
        Dataset("t", np.ones((2, 6)), np.arange(2), np.ones((1, 6)), np.arange(1), 0.0, 1.0,
                (1, 2, 2))


def test_digits28_is_the_digits_at_mnist_size():
    small, big = load_dataset("digits"), load_dataset("digits28")
    assert big.shape == (1, 28, 28) and big.n_features == 784 and big.name == "digits28"
    assert np.array_equal(big.y_train, small.y_train) and np.array_equal(big.y_test, small.y_test)
    assert (big.lo, big.hi) == (small.lo, small.hi)
    images = big.x_test.reshape(-1, 28, 28)
    assert not images[:, :2].any() and not images[:, -2:].any()
    assert not images[:, :, :2].any() and not images[:, :, -2:].any()
    # Every 3 x 3 block of the 24 x 24 inside is one pixel of the 8 x 8 image.
    blocks = images[:, 2:26, 2:26].reshape(-1, 8, 3, 8, 3)
    assert np.array_equal(blocks, np.broadcast_to(
        small.x_test.reshape(-1, 8, 1, 8, 1), blocks.shape))
