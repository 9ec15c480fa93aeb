"""Data sets for training: loading, a fixed train/test split, and the 8-bit input quantizer.

Three sources are understood (see :func:`load_dataset`):

- ``"digits"``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16,
  no download);
- a directory of MNIST-format IDX files (``train-images-idx3-ubyte`` and friends, raw or
  gzipped);
- an ``.npz`` archive with arrays ``x`` and ``y`` (and optionally ``x_test`` and ``y_test``).

Images keep their shape (:attr:`Dataset.shape`: ``(C, H, W)``; digits ``1x8x8``, MNIST
``1x28x28``): a network that starts with a convolution gets its inputs as ``(n, C, H, W)``, a
fully connected one gets them flat, ``(n, C * H * W)``.

A :class:`Dataset` keeps the raw values together with the range ``[lo, hi]`` that
:func:`quantize_inputs` maps to ``[-1, 1]`` before quantizing to the input width, as SPEC.md
section 4 asks ("map the data to [-1, 1] and quantize to 8 bits"). Where no test set is given,
:func:`split_test_mask` picks one by a fixed per-class rule that uses no random numbers, so the
split is the same on every machine and every NumPy version.

Every problem with a user's file raises :class:`~intrain.errors.DataError` with a message that
names the file and the problem.
"""

from __future__ import annotations

import gzip
import math
import pickle
import zipfile
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from intrain.errors import DataError

__all__ = [
    "Dataset",
    "DataError",
    "MAX_CLASSES",
    "quantize_inputs",
    "split_test_mask",
    "load_digits",
    "load_idx",
    "load_idx_dir",
    "load_npz",
    "load_dataset",
]

#: Labels must be below this (the largest layer :class:`~intrain.config.Config` accepts).
MAX_CLASSES = 65536

_DEFAULT_TEST_FRACTION = 0.2


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Dataset:
    """A training set and a test set of raw values with integer class labels.

    Parameters
    ----------
    name : str
        Where the data came from (``"digits"``, a directory, a file).
    x_train, x_test : numpy.ndarray
        Raw input values, shape ``(n, n_features)``, in the source's own dtype (``uint8`` for
        digits and IDX files).
    y_train, y_test : numpy.ndarray
        Class labels, ``int64``, shape ``(n,)``, in ``0 .. n_classes - 1``.
    lo, hi : float
        The raw value range: :func:`quantize_inputs` maps ``lo`` to -1 and ``hi`` to +1.
    shape : tuple of int, optional
        ``(C, H, W)`` of one image (the samples are stored flat, in ``C, H, W`` order); None for
        data that are not images.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lo: float
    hi: float
    shape: tuple[int, int, int] | None = None

    def __post_init__(self):
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if not isinstance(x, np.ndarray) or x.ndim != 2:
                raise DataError(f"{self.name}: x_{part} must be a 2-D array (samples, features)")
            if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.int64:
                raise DataError(f"{self.name}: y_{part} must be a 1-D int64 array of labels")
            if len(x) != len(y):
                raise DataError(
                    f"{self.name}: x_{part} has {len(x)} samples but y_{part} has {len(y)}")
            if y.size and (y.min() < 0 or y.max() >= MAX_CLASSES):
                raise DataError(
                    f"{self.name}: y_{part} labels must lie in 0..{MAX_CLASSES - 1}")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise DataError(
                f"{self.name}: training samples have {self.x_train.shape[1]} features but test "
                f"samples have {self.x_test.shape[1]}")
        if len(self.x_train) == 0:
            raise DataError(f"{self.name}: the training set is empty")
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise DataError(
                f"{self.name}: the value range must have lo < hi, not lo={self.lo}, hi={self.hi}")
        if self.shape is not None and (len(self.shape) != 3
                                       or math.prod(self.shape) != self.n_features):
            raise DataError(f"{self.name}: image shape {self.shape} must be (C, H, W) with "
                            f"C * H * W = {self.n_features} values")

    @property
    def n_features(self) -> int:
        """Values per sample (the input layer's size)."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Largest label in the training or test set, plus one (the output layer's size)."""
        top = int(self.y_train.max())
        if self.y_test.size:
            top = max(top, int(self.y_test.max()))
        return top + 1

    @property
    def n_train(self) -> int:
        return int(len(self.y_train))

    @property
    def n_test(self) -> int:
        return int(len(self.y_test))

    def quantize(self, bits: int = 8, shape=None) -> tuple[np.ndarray, np.ndarray]:
        """Both sets' inputs quantized by :func:`quantize_inputs` with this data set's range.

        Parameters
        ----------
        bits : int
            Width of the quantized inputs.
        shape : tuple of int, optional
            ``(C, H, W)``: return images of that shape (the network's input). Images must have
            that shape; flat data are folded in ``C, H, W`` order when they hold ``C * H * W``
            values per sample.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``int64`` arrays ``(a0_train, a0_test)``, values in ``[-(2**(bits-1)-1),
            2**(bits-1)-1]``, ``(n, features)`` or ``(n, *shape)``.
        """
        if shape is not None:
            self.check_shape(tuple(shape))
        parts = (quantize_inputs(self.x_train, self.lo, self.hi, bits),
                 quantize_inputs(self.x_test, self.lo, self.hi, bits))
        return parts if shape is None else tuple(a.reshape(len(a), *shape) for a in parts)

    def check_shape(self, shape: tuple[int, int, int]) -> None:
        """Raise :class:`DataError` unless the samples can be read as ``(C, H, W)`` images."""
        def text(s):
            return "x".join(map(str, s))
        if self.shape is not None and self.shape != shape:
            raise DataError(f"{self.name} holds {text(self.shape)} images, not the network's "
                            f"input shape {text(shape)}")
        if math.prod(shape) != self.n_features:
            raise DataError(f"{self.name} has {self.n_features} values per sample; the network's "
                            f"input shape {text(shape)} needs {math.prod(shape)}")

    def __repr__(self):
        shape = f", shape={self.shape}" if self.shape else ""
        return (f"Dataset({self.name!r}, train={self.n_train}, test={self.n_test}, "
                f"features={self.n_features}{shape}, classes={self.n_classes}, "
                f"range=[{self.lo:g}, {self.hi:g}])")


# ------------------------------------------------------------------------------------------------
def quantize_inputs(x, lo, hi, bits: int = 8) -> np.ndarray:
    """Map raw values linearly onto ``[-1, 1]`` and quantize them to ``bits`` bits.

    ``lo`` maps to -1 and ``hi`` to +1; then, as the WAGE reference code does,
    ``A0 = clip(round(x_real * 2**(bits-1)), -(2**(bits-1)-1), 2**(bits-1)-1)`` with rounding
    half to even. Values outside ``[lo, hi]`` saturate.

    Integer data are computed exactly, in integer arithmetic, so that ties round as they should:
    with ``lo = a/m`` and ``hi = b/m`` (exact fractions), ``A0`` is the round-half-even
    quotient of ``(2 * (v*m - a) - (b - a)) * 2**(bits-1)`` by ``b - a``. Floating-point data are
    computed in float64 as ``rint((2 * (v - lo) - (hi - lo)) * 2**(bits-1) / (hi - lo))``,
    which is exact, ties included, when these quantities are representable (for example
    whole-number values).

    Parameters
    ----------
    x : array_like
        Raw values, integer or floating point, any shape.
    lo, hi : float
        The range mapped to ``[-1, 1]``; ``lo < hi``, both finite.
    bits : int
        Width of the result, 2 to 16.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of ``x``'s shape.

    Examples
    --------
    The digits (values 0..16, ``lo=0``, ``hi=16``) give ``16*v - 128`` clipped to
    ``[-127, 127]``:

    >>> quantize_inputs(np.array([0, 1, 8, 16]), 0, 16).tolist()
    [-127, -112, 0, 127]
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an integer from 2 to 16, not {bits!r}")
    bits = int(bits)
    x = np.asarray(x)
    try:
        lo_f, hi_f = float(lo), float(hi)
    except (TypeError, ValueError):
        raise DataError(f"the value range must be two numbers, not lo={lo!r}, hi={hi!r}") \
            from None
    if not (math.isfinite(lo_f) and math.isfinite(hi_f) and lo_f < hi_f):
        raise DataError(f"the value range must have finite lo < hi, not lo={lo}, hi={hi}")
    a_max = (1 << (bits - 1)) - 1
    if x.dtype.kind in "iu":
        q = _quantize_exact(x, lo, hi, bits)
    elif x.dtype.kind == "f":
        xf = x.astype(np.float64)
        if not np.isfinite(xf).all():
            raise DataError("input values contain NaN or infinity")
        # Saturate first: values beyond the range quantize to the clip limit either way, and
        # the scaled values stay far from float64 overflow.
        xf = np.clip(xf, lo_f, hi_f)
        if not hi_f - lo_f < 2.0**1000:  # scaled by a power of two (exact) so nothing overflows
            xf, lo_f, hi_f = (v * 2.0 ** -(bits + 2) for v in (xf, lo_f, hi_f))
        span = hi_f - lo_f
        q = np.rint((2.0 * (xf - lo_f) - span) * float(1 << (bits - 1)) / span)
        q = q.astype(np.int64)
    else:
        raise DataError(f"input values must be integers or floating point, not {x.dtype}")
    return np.clip(q, -a_max, a_max).astype(np.int64, copy=False)


def _exact(value) -> Fraction:
    """A number as an exact fraction (a float's exact binary value)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (int, np.integer)):
        return Fraction(int(value))
    return Fraction(float(value))


def _quantize_exact(x: np.ndarray, lo, hi, bits: int) -> np.ndarray:
    """Exact round-half-even quantization of integer ``x`` (see :func:`quantize_inputs`)."""
    flo, fhi = _exact(lo), _exact(hi)
    m = math.lcm(flo.denominator, fhi.denominator)
    a, b = int(flo * m), int(fhi * m)          # lo = a/m, hi = b/m exactly
    span = b - a                               # > 0
    half = 1 << (bits - 1)
    # Saturating v to [floor(lo), ceil(hi)] changes no result: every v <= lo maps to a value
    # <= -2**(bits-1), every v >= hi to one >= 2**(bits-1), and both clip to the limit.
    v_lo, v_hi = math.floor(flo), math.ceil(fhi)
    # |v*m - a| <= span + m after saturation, so |num| <= (3*span + 2*m) * half.
    fits = (x.dtype != np.uint64 and abs(a) + m < 2**61 and abs(b) + m < 2**61
            and (3 * span + 2 * m) * half < 2**62)
    if fits:
        v = np.clip(x.astype(np.int64), v_lo, v_hi)
    else:
        # Too wide for int64 intermediates: Python integers (object arrays), still exact.
        v = np.clip(x.astype(object), v_lo, v_hi)
    num = (2 * (v * m - a) - span) * half
    q = num // span                            # floor
    r2 = 2 * (num - q * span)                  # twice the remainder, in [0, 2*span)
    q = q + ((r2 > span) | ((r2 == span) & (q % 2 == 1)))
    return q.astype(np.int64)


# ------------------------------------------------------------------------------------------------
def _as_fraction(test_fraction) -> Fraction:
    try:
        f = Fraction(test_fraction).limit_denominator(10**6)
    except (TypeError, ValueError, OverflowError):
        raise DataError(
            f"test_fraction must be a number between 0 and 1, not {test_fraction!r}") from None
    if not 0 < f < 1:
        raise DataError(f"test_fraction must lie strictly between 0 and 1, not {test_fraction!r}")
    return f


def split_test_mask(y, test_fraction=_DEFAULT_TEST_FRACTION) -> np.ndarray:
    """The fixed, stratified choice of test samples: a boolean mask, True for test.

    Within each class the samples keep the data set's order and are numbered
    ``i = 0, 1, 2, ...``. With ``test_fraction = p/q`` as an exact fraction (a float is read
    as the nearest fraction with a denominator up to 10**6, so 0.2 is 1/5), sample ``i`` goes
    to the test set exactly when ``floor((i + 1) * p / q) > floor(i * p / q)``. For the default
    1/5 this is every 5th sample of each class: ``i % 5 == 4``. No random numbers are used,
    so the split is the same on every machine and NumPy version; every class with at least
    ``ceil(q / p)`` samples has some in the test set.

    Parameters
    ----------
    y : array_like
        1-D integer labels.
    test_fraction : float or fractions.Fraction
        Share of each class that goes to the test set, strictly between 0 and 1.

    Returns
    -------
    numpy.ndarray
        Boolean array of ``y``'s length.
    """
    f = _as_fraction(test_fraction)
    y = np.asarray(y)
    n = len(y)
    order = np.argsort(y, kind="stable")
    ys = y[order]
    first = np.searchsorted(ys, ys, side="left")   # start of each sample's class in `order`
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64) - first
    p, q = f.numerator, f.denominator
    return ((rank + 1) * p) // q > (rank * p) // q


def _split(name, x, y, lo, hi, test_fraction, shape=None) -> Dataset:
    test = split_test_mask(y, test_fraction)
    return Dataset(name, x[~test], y[~test], x[test], y[test], lo, hi, shape)


# ------------------------------------------------------------------------------------------------
def load_digits(test_fraction=_DEFAULT_TEST_FRACTION) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits, split into training and test sets.

    1,797 images of 1x8x8 values 0..16 (kept as ``uint8``), 10 classes, ``lo = 0``, ``hi = 16``.
    Nothing is downloaded. The test set is chosen by :func:`split_test_mask`: within each digit,
    in the data set's original order, the samples numbered ``i = 0, 1, ...`` with
    ``floor((i + 1) * f) > floor(i * f)`` (``f = test_fraction``); for the default 0.2 that is
    every 5th sample of each digit (``i % 5 == 4``): 355 test and 1,442 training samples.

    Parameters
    ----------
    test_fraction : float
        Share of each class kept for testing, strictly between 0 and 1.

    Returns
    -------
    Dataset
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise DataError(
            "the built-in digits data set needs scikit-learn: pip install scikit-learn") \
            from None
    bunch = _sk_load_digits()
    x = np.asarray(bunch.data)
    if x.min() < 0 or x.max() > 16 or not np.array_equal(x, np.rint(x)):
        raise DataError("scikit-learn's digits are not whole numbers 0..16 as expected")
    return _split("digits", x.astype(np.uint8), np.asarray(bunch.target, dtype=np.int64),
                  0.0, 16.0, test_fraction, (1, 8, 8))


def load_digits28(test_fraction=_DEFAULT_TEST_FRACTION) -> Dataset:
    """The built-in digits (:func:`load_digits`) at MNIST's size: every pixel a 3 x 3 block and
    a border of 2 zero pixels, 1x28x28 (784 features), the same samples, split and classes.
    A stand-in for MNIST-size networks when MNIST itself is not at hand."""
    digits = load_digits(test_fraction)

    def scale(x):
        images = x.reshape(-1, 8, 8).repeat(3, axis=1).repeat(3, axis=2)
        return np.pad(images, ((0, 0), (2, 2), (2, 2))).reshape(len(x), 784)

    return Dataset("digits28", scale(digits.x_train), digits.y_train, scale(digits.x_test),
                   digits.y_test, digits.lo, digits.hi, (1, 28, 28))


# ------------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short (16-bit)",
               0x0C: "int (32-bit)", 0x0D: "float (32-bit)", 0x0E: "double (64-bit)"}


def _read_bytes(path: Path) -> bytes:
    """A file's contents, decompressed if its name ends in ``.gz``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    return raw


def load_idx(path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (the MNIST format) of unsigned bytes, raw or gzipped (``.gz``).

    The header is two zero bytes, a data type code (only 0x08, unsigned byte, is accepted),
    the number of dimensions, then each dimension as a big-endian 32-bit count. The payload
    that follows must hold exactly the product of the dimensions in bytes.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    ndim : int, optional
        Required number of dimensions.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of the file's shape.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX file ({len(data)} bytes, header needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{path}: not an IDX file (magic number starts with 0x{data[0]:02X} 0x{data[1]:02X}, "
            f"expected 0x00 0x00)")
    code, dims_n = data[2], data[3]
    if code != 0x08:
        kind = _IDX_DTYPES.get(code, "unknown")
        raise DataError(
            f"{path}: IDX data type code 0x{code:02X} ({kind}) is not supported; "
            f"only 0x08 (unsigned byte) is")
    if ndim is not None and dims_n != ndim:
        raise DataError(f"{path}: has {dims_n} dimension(s), expected {ndim}")
    header = 4 + 4 * dims_n
    if len(data) < header:
        raise DataError(
            f"{path}: truncated header ({len(data)} bytes, {dims_n} dimensions need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=dims_n, offset=4))
    expected = math.prod(shape)
    payload = len(data) - header
    if payload < expected:
        raise DataError(
            f"{path}: truncated: shape {shape} needs {expected} data bytes, found {payload}")
    if payload > expected:
        raise DataError(
            f"{path}: {payload - expected} unexpected bytes after the data of shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str, kind: str) -> Path:
    """``<stem>-<kind>-ubyte`` in ``directory``, also with ``.gz`` or ``<stem>.<kind>-ubyte``."""
    names = [f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"{directory / names[0]}: no such file (nor {names[0]}.gz, {names[1]} or "
        f"{names[1]}.gz in {directory})")


def _load_idx_pair(directory: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    img_path = _find_idx(directory, f"{stem}-images", "idx3")
    lbl_path = _find_idx(directory, f"{stem}-labels", "idx1")
    images = load_idx(img_path, ndim=3)
    labels = load_idx(lbl_path, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels")
    if len(images) == 0:
        raise DataError(f"{img_path}: holds no images")
    if images.size == 0:
        raise DataError(f"{img_path}: its images of shape {images.shape[1:]} hold no pixels")
    return images, labels.astype(np.int64)


def load_idx_dir(path) -> Dataset:
    """MNIST-format IDX files in a directory.

    The directory must hold ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or gzipped (``.gz``
    appended); the dotted names (``train-images.idx3-ubyte``) are accepted too. Images must be
    3-D ``(n, rows, cols)``: 1 x rows x cols images (:attr:`Dataset.shape`), stored flat; each
    label file must
    hold as many labels as its image file holds images. Values are ``uint8`` with ``lo = 0``,
    ``hi = 255``. The ``t10k`` files are the test set.

    Parameters
    ----------
    path : str or pathlib.Path
        The directory.

    Returns
    -------
    Dataset
    """
    directory = Path(path)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory")
    x_train, y_train = _load_idx_pair(directory, "train")
    x_test, y_test = _load_idx_pair(directory, "t10k")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{directory}: training images are {'x'.join(map(str, x_train.shape[1:]))} but test "
            f"images are {'x'.join(map(str, x_test.shape[1:]))}")
    shape = (1, *x_train.shape[1:])
    x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    return Dataset(str(directory), x_train, y_train, x_test, y_test, 0.0, 255.0, shape)


# ------------------------------------------------------------------------------------------------
def _check_inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: array {key!r} must hold integers or floating-point numbers, not {x.dtype}")
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{path}: array {key!r} holds no samples (shape {x.shape})")
    if x.size == 0:
        raise DataError(f"{path}: array {key!r} holds no values per sample (shape {x.shape})")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{path}: array {key!r} contains NaN or infinity")
    return x.reshape(len(x), -1)


def _check_labels(path: Path, key: str, y: np.ndarray) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"{path}: array {key!r} must be 1-D (one label per sample), "
                        f"not of shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(f"{path}: array {key!r} contains NaN or infinity")
        if not np.array_equal(y, np.floor(y)):
            raise DataError(f"{path}: array {key!r} holds labels that are not whole numbers")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{path}: array {key!r} must hold integer class labels, not {y.dtype}")
    if y.size and y.min() < 0:
        raise DataError(f"{path}: array {key!r} holds negative labels (smallest {y.min()})")
    if y.size and y.max() >= MAX_CLASSES:
        raise DataError(
            f"{path}: array {key!r} holds label {y.max()}; labels must be below {MAX_CLASSES}")
    return y.astype(np.int64)


def _image_shape(x: np.ndarray) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the samples of ``x`` ``(n, H, W)`` or ``(n, C, H, W)``, else None."""
    if x.ndim == 3:
        return (1, *x.shape[1:])
    return tuple(x.shape[1:]) if x.ndim == 4 else None


def load_npz(path, test_fraction=_DEFAULT_TEST_FRACTION) -> Dataset:
    """A data set stored in a NumPy ``.npz`` archive.

    The archive holds ``x`` (samples first, any further shape; flattened to
    ``(n, features)``) and ``y`` (``n`` labels), and optionally both ``x_test`` and ``y_test``.
    ``x`` of shape ``(n, H, W)`` or ``(n, C, H, W)`` holds images (:attr:`Dataset.shape`
    ``(1, H, W)`` or ``(C, H, W)``); ``x_test`` must then hold images of the same shape.
    Without test arrays the test set is split off ``x, y`` by :func:`split_test_mask` (for the
    default 0.2: every 5th sample of each class, in the archive's order).

    Inputs must be integers or floating point (no booleans, strings or objects) with no NaN
    or infinity. Labels must be non-negative integers (floats that are whole numbers are
    accepted). The value range is ``[0, 255]`` for ``uint8`` inputs, otherwise the smallest and
    largest value of the training inputs (which must differ).

    Parameters
    ----------
    path : str or pathlib.Path
        The archive.
    test_fraction : float
        Share of each class kept for testing when the archive has no test arrays.

    Returns
    -------
    Dataset
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if magic == b"\x93NUMPY":
        raise DataError(f"{path}: is a single .npy array, not an .npz archive")
    if not magic.startswith(b"PK"):
        raise DataError(f"{path}: not a readable .npz archive (not a zip file)")
    arrays = {}
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: is a single .npy array, not an .npz archive")
        with archive:
            keys = set(archive.files)
            for key in ("x", "y"):
                if key not in keys:
                    found = ", ".join(sorted(keys)) or "none"
                    raise DataError(f"{path}: has no array {key!r} (found: {found})")
            if ("x_test" in keys) != ("y_test" in keys):
                raise DataError(
                    f"{path}: has only one of 'x_test' and 'y_test'; give both or neither")
            for key in ("x", "y", "x_test", "y_test"):
                if key in keys:
                    try:
                        arrays[key] = archive[key]
                    except ValueError as e:
                        if "allow_pickle" not in str(e):
                            raise
                        raise DataError(
                            f"{path}: array {key!r} holds Python objects, not numbers") from None
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
            pickle.UnpicklingError, RuntimeError) as e:  # RuntimeError: encrypted, unsupported
        raise DataError(f"{path}: not a readable .npz archive ({e})") from None

    shape = _image_shape(arrays["x"])
    x = _check_inputs(path, "x", arrays["x"])
    y = _check_labels(path, "y", arrays["y"])
    if len(x) != len(y):
        raise DataError(f"{path}: 'x' holds {len(x)} samples but 'y' holds {len(y)} labels")
    if x.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    else:
        lo, hi = x.min(), x.max()
        if lo == hi:
            raise DataError(f"{path}: every value of 'x' is {lo}; the inputs need a range")
        lo, hi = float(lo), float(hi)
    name = str(path)
    if "x_test" not in arrays:
        return _split(name, x, y, lo, hi, test_fraction, shape)
    if _image_shape(arrays["x_test"]) != shape:
        raise DataError(f"{path}: 'x' has samples of shape {arrays['x'].shape[1:]} but 'x_test' "
                        f"has {arrays['x_test'].shape[1:]}")
    x_test = _check_inputs(path, "x_test", arrays["x_test"])
    y_test = _check_labels(path, "y_test", arrays["y_test"])
    if len(x_test) != len(y_test):
        raise DataError(
            f"{path}: 'x_test' holds {len(x_test)} samples but 'y_test' holds {len(y_test)} labels")
    if x_test.shape[1] != x.shape[1]:
        raise DataError(
            f"{path}: 'x' has {x.shape[1]} features per sample but 'x_test' has {x_test.shape[1]}")
    return Dataset(name, x, y, x_test, y_test, lo, hi, shape)


# ------------------------------------------------------------------------------------------------
def load_dataset(spec: str = "digits", test_fraction=_DEFAULT_TEST_FRACTION) -> Dataset:
    """The data set named by ``spec``, as the ``intrain train`` command accepts it.

    Parameters
    ----------
    spec : str
        ``"digits"`` (scikit-learn's bundled 8x8 digits, the default), ``"digits28"`` (the
        same scaled to 28x28, :func:`load_digits28`), a directory of MNIST-format IDX files
        (see :func:`load_idx_dir`), or a path ending in ``.npz`` (see :func:`load_npz`).
    test_fraction : float
        Share of each class kept for testing where the source has no test set of its own.

    Returns
    -------
    Dataset
    """
    spec = str(spec)
    if spec == "digits":
        return load_digits(test_fraction)
    if spec == "digits28":
        return load_digits28(test_fraction)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".npz":
        return load_npz(path, test_fraction)
    if path.is_dir():
        return load_idx_dir(path)
    what = "no such file or directory" if not path.exists() else "not a directory or .npz file"
    raise DataError(
        f"{spec}: {what}; a data set is 'digits', 'digits28', a directory of MNIST-format IDX "
        "files "
        "(train-images-idx3-ubyte, ...) or a .npz file with arrays x and y")
