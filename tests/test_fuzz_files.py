"""Fuzz tests of every file a user hands ``intrain``: configuration files (TOML and JSON),
MNIST IDX folders, ``.npz`` archives and training reports given back as a configuration.

The property, for any input: the command succeeds or ends in one line ``intrain: error: ...``
with exit status 2; never a traceback, never a hang (:func:`fuzz_helpers.no_hang`), and every
output file it leaves (report, saved config) is whole.
"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import math
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from fuzz_helpers import (
    assert_clean_exit,
    assert_outputs_whole,
    budgets,
    cli,
    mutations,
    run_fuzz,
)
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intrain.config import Config

SMALL = Config(layers=(4, 6, 3), batch_size=8, epochs=2)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@pytest.fixture(scope="module")
def tiny_data(folder):
    """40 samples of 4 values, 3 classes: a data set SMALL trains on in a moment."""
    rng = np.random.default_rng(0)
    path = folder / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 4), dtype=np.uint8), y=np.arange(40) % 3)
    return path


def _train(data, out: Path, *extra) -> tuple[int, str]:
    """One training step on ``data`` writing a report and a config to ``out``; checks the
    property and returns ``(status, stderr)``."""
    rc, _, err = cli(["train", "-q", "--no-float", "--steps", "1", "--data", str(data),
                      "--report", str(out / "report.json"),
                      "--save-config", str(out / "saved.toml"), *extra])
    assert_clean_exit(rc, err)
    assert_outputs_whole(out)
    return rc, err


def _fresh(folder: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=folder))


def _given(folder: Path, name: str, content: bytes, config_for=None) -> tuple[int, str]:
    """Write ``content`` to a file ``name`` in a fresh folder and train with it: as the data
    set, or as the configuration (``--config``) of a run on the data set ``config_for``."""
    out = _fresh(folder)
    path = out / name
    path.write_bytes(content)
    if config_for is None:
        return _train(path, out)
    return _train(config_for, out, "--config", str(path))


# ------------------------------------------------------------------------------------------------
# Configuration files

def _toml(value) -> str:
    """A TOML literal for ``value`` (inline tables and arrays; None becomes a date)."""
    if value is None:
        return "1979-05-27"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, (int, datetime.date)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _config_text(data: dict, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(data)
    return "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in data.items()) + "\n"


_numbers = st.one_of(
    st.integers(-300, 300),
    st.integers(),
    st.sampled_from([2**31, 2**32, 2**63, 2**64, -2**63 - 1, 10**30, 65537, 4097, 100001]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_lfsr = st.fixed_dictionaries({}, optional={
    "width": st.integers(0, 70), "taps": st.lists(st.integers(0, 70), max_size=5),
    "draw_bits": st.integers(0, 70)})


def _containers(inner):
    return st.one_of(st.lists(inner, max_size=5),
                     st.dictionaries(st.text(max_size=8), inner, max_size=4))


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=12), _lfsr,
              st.sampled_from(["2-8-8-8", "0:1,3:0", "64,256,10", "code", "paper", ""])),
    _containers, max_leaves=12)
_fields = st.sampled_from([*SMALL.to_dict(), "bit_error_rate", "fault_seed", "speed", "config",
                           "history", "\n", ""])


@budgets(120)
def test_config_fields_of_any_type_or_size(budget, folder, tiny_data):
    def prop(changes, suffix):
        text = _config_text({**SMALL.to_dict(), **changes}, suffix)
        _given(folder, f"c{suffix}", text.encode(), config_for=tiny_data)

    run_fuzz(budget, prop, st.dictionaries(_fields, _values, min_size=1, max_size=3),
             st.sampled_from([".toml", ".json"]))


@budgets(100)
def test_config_files_of_any_bytes(budget, folder, tiny_data):
    def prop(data, suffix):
        _given(folder, f"c{suffix}", data, config_for=tiny_data)

    run_fuzz(budget, prop, st.one_of(st.binary(max_size=200),
                                     st.text(max_size=200).map(str.encode),
                                     st.just(b"[" * 5000), st.just(b"a = " + b"[" * 5000),
                                     st.just(b"seed = " + b"7" * 5000)),
             st.sampled_from([".toml", ".json"]))


@budgets(100)
def test_damaged_saved_configs(budget, folder, tiny_data):
    valid = {}
    for suffix in (".toml", ".json"):
        SMALL.replace(bit_error_rate=1e-3).save(folder / f"valid{suffix}")
        valid[suffix] = (folder / f"valid{suffix}").read_bytes()

    def prop(suffix, data):
        _given(folder, f"c{suffix}", data, config_for=tiny_data)

    run_fuzz(budget, lambda args: prop(*args), st.one_of(
        *(mutations(v).map(lambda d, s=s: (s, d)) for s, v in valid.items())))


# ------------------------------------------------------------------------------------------------
# Reports given back as a configuration

@pytest.fixture(scope="module")
def report_bytes(folder, tiny_data):
    out = _fresh(folder)
    rc, _ = _train(tiny_data, out, "--config", str(_saved(folder)))
    assert rc == 0
    return (out / "report.json").read_bytes()


def _saved(folder):
    path = folder / "small.json"
    SMALL.save(path)
    return path


def test_a_report_given_as_config_is_named_for_what_it_is(folder, tiny_data, report_bytes):
    rc, err = _given(folder, "r.json", report_bytes, config_for=tiny_data)
    assert rc == 2 and "this is a training report (--report), not a configuration" in err
    path = folder / "report-as-config.json"
    path.write_bytes(report_bytes)
    rc, _, err = cli(["build", "-q", "--board", "icebreaker", "--config", str(path)])
    assert rc == 2 and "training report" in err


@budgets(60)
def test_damaged_reports_given_as_config(budget, folder, tiny_data, report_bytes):
    def prop(data):
        _given(folder, "r.json", data, config_for=tiny_data)

    run_fuzz(budget, prop, mutations(report_bytes))


# ------------------------------------------------------------------------------------------------
# MNIST IDX folders

_IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


@st.composite
def _idx_file(draw, ndim: int):
    """An IDX file's bytes: usually a plausible header and payload, often with a lie in it."""
    code = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0x42]))
    dims_n = draw(st.sampled_from([ndim, ndim, ndim, 0, 2, 4]))
    count = draw(st.integers(0, 6))
    side = st.one_of(st.integers(0, 4), st.sampled_from([2**31, 2**32 - 1]))
    dims = ([count] + draw(st.lists(side, min_size=dims_n, max_size=dims_n))[1:])[:dims_n]
    size = math.prod(dims)
    size += draw(st.sampled_from([0, 0, 0, -1, 1, -size]))
    size = size if size <= 256 else draw(st.integers(0, 16))  # huge dimensions that lie
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x00", b"\x00\x01", b"\x01\x00"]))
    payload = draw(st.binary(min_size=max(0, size), max_size=max(0, size)))
    head = magic + bytes([code, dims_n]) + b"".join(struct.pack(">I", d) for d in dims)
    data = head + payload
    cut = draw(st.integers(0, len(data)))
    return draw(st.sampled_from([data, data, data, data[:cut], b""]))


@st.composite
def _idx_folder(draw):
    files = {}
    for name in _IDX_NAMES:
        kind = draw(st.sampled_from(["raw", "raw", "gz", "bad-gz", "missing", "dotted"]))
        data = draw(_idx_file(3 if "images" in name else 1))
        if kind == "missing":
            continue
        if kind == "dotted":
            name = name.replace("-idx", ".idx")
        if kind in ("gz", "bad-gz"):
            data = gzip.compress(data)
            if kind == "bad-gz":
                data = data[:draw(st.integers(0, len(data) - 1))]
            name += ".gz"
        files[name] = data
    return files


@budgets(120)
def test_idx_folders(budget, folder):
    def prop(files):
        out = _fresh(folder)
        data = out / "mnist"
        data.mkdir()
        for name, content in files.items():
            (data / name).write_bytes(content)
        _train(data, out)

    run_fuzz(budget, prop, _idx_folder())


# ------------------------------------------------------------------------------------------------
# .npz archives

_dtypes = st.sampled_from([np.uint8, np.int8, np.int64, np.uint64, np.float16, np.float32,
                           np.float64, np.bool_, np.complex64, "U3"])
# Mostly samples x features (either may be 0), sometimes any shape.
_shapes = st.one_of(
    st.tuples(st.integers(0, 8), st.integers(0, 4)),
    st.tuples(st.integers(0, 8), st.integers(0, 3), st.integers(0, 3)),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))


@st.composite
def _array(draw, labels: bool = False):
    dtype = draw(_dtypes)
    shape = draw(_shapes)
    if labels and draw(st.booleans()):
        # Mostly sensible labels: small integers, sometimes negative, huge or fractional.
        values = st.one_of(st.integers(0, 4), st.sampled_from([-1, 65536, 10**6, 2.5]))
        return np.array(draw(st.lists(values, min_size=0, max_size=8)))
    if np.dtype(dtype).kind in "iufc":
        elements = None
        if np.dtype(dtype).kind == "f":
            elements = st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=True,
                                 allow_infinity=True)
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


_numeric = st.sampled_from([np.uint8, np.int8, np.int64, np.uint64, np.float16, np.float32,
                            np.float64])


@st.composite
def _arrays(draw) -> dict:
    """Mostly a plausible data set (numeric x, one label per sample, maybe a test set), else
    any of the four arrays and a stray one."""
    if draw(st.integers(0, 3)):
        arrays = {}
        for x, y in (("x", "y"), ("x_test", "y_test"))[:draw(st.integers(1, 2))]:
            shape = draw(st.one_of(st.tuples(st.integers(1, 8), st.integers(0, 4)),
                                   st.tuples(st.integers(1, 8), st.integers(0, 3),
                                             st.integers(0, 3))))
            arrays[x] = draw(hnp.arrays(draw(_numeric), shape))
            arrays[y] = np.arange(shape[0]) % draw(st.integers(1, 4))
        return arrays
    keys = draw(st.sets(st.sampled_from(["x", "y", "x_test", "y_test", "z"]), max_size=5))
    return {k: draw(_array(labels=k.startswith("y"))) for k in keys}


@st.composite
def _header_damage(draw, data: bytes) -> bytes:
    """``data`` with a byte of a zip header changed (version, flags, method, sizes)."""
    heads = [i for i in range(len(data) - 1) if data[i:i + 2] == b"PK"]
    # Mostly a local header's version, flags or method, set to what zipfile cannot read.
    field, value = draw(st.one_of(
        st.tuples(st.sampled_from([4, 6, 8]), st.sampled_from([0x01, 0x20, 0x40, 0x63, 0xFF])),
        st.tuples(st.integers(0, 45), st.integers(0, 255))))
    i = min(len(data) - 1, draw(st.sampled_from(heads)) + field)
    return data[:i] + bytes([value]) + data[i + 1:]


@st.composite
def _archive(draw, damage=None) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buffer, **draw(_arrays()))
    data = buffer.getvalue()
    return draw(damage(data) if damage else st.one_of(st.just(data), mutations(data)))


@budgets(100)
def test_npz_archives(budget, folder):
    def prop(data):
        _given(folder, "data.npz", data)

    run_fuzz(budget, prop, st.one_of(_archive(), st.binary(max_size=64),
                                     st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b),
                                     st.just(b"\x93NUMPY" + bytes(10))))


@budgets(150)
def test_npz_archives_with_damaged_zip_headers(budget, folder):
    def prop(data):
        _given(folder, "data.npz", data)

    run_fuzz(budget, prop, _archive(damage=_header_damage))


def test_inputs_spanning_the_whole_float_range_quantize_without_overflow(folder):
    from intrain.data import quantize_inputs

    x = np.array([-1.7e308, 0.0, 0.85e308, 1.7e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        assert quantize_inputs(x, -1.7e308, 1.7e308).tolist() == [-127, 0, 64, 127]
        out = _fresh(folder)
        np.savez(out / "wide.npz", x=np.stack([x, x[::-1]], axis=1), y=np.arange(4) % 2)
        assert _train(out / "wide.npz", out)[0] == 0
