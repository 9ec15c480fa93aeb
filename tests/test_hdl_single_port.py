# amaranth: UnusedElaboratable=no
"""SinglePortBank against a Python model: random sequences of reads and writes that keep the
documented rules (with the hold register: a write that meets a read, or one still held, waits for
a cycle without a read; no read of a held or simultaneous write; no write lost; without it: no
write in a cycle with a read), checked cycle by cycle in Amaranth's simulator (``kind="generic"``)
and, with yosys' ``SB_SPRAM256KA`` model, in Icarus Verilog (``kind="ice40"``); ``collided`` for
each way of breaking the rules; the SPRAM count of :func:`spram_blocks`."""

from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass

import pytest
from amaranth import Shape, signed, unsigned
from amaranth.sim import Simulator

from intrain.hdl.single_port import SPRAM_DEPTH, SinglePortBank, spram_blocks
from intrain.sim.dsp_models import ModelNotFound, spram_model_text
from intrain.sim.runner import export_verilog
from intrain.sim.tools import iverilog_bin


# -- operations and the reference model -------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One cycle's inputs. The address and data of a port that is not enabled are driven too
    (with values that would collide if they counted): the bank must ignore them."""

    read: bool
    r_addr: int
    write: bool
    w_addr: int
    w_data: int


def _rd(addr):
    return Op(True, addr, False, 0, 0)


def _wr(addr, data):
    return Op(False, 0, True, addr, data)


def _rw(r_addr, w_addr, data):
    return Op(True, r_addr, True, w_addr, data)


IDLE = Op(False, 0, False, 0, 0)


def _mask(shape):
    return (1 << Shape.cast(shape).width) - 1


def _check(shape, ops, trace):
    """``trace[i]`` (``r_data`` and ``collided`` in the cycle after cycle ``i``) against the
    model: a read returns the last write to its address accepted in an earlier
    cycle (0 if none), and ``collided`` stays 0."""
    mask = _mask(shape)
    assert len(trace) == len(ops)
    mem = {}
    for i, (op, (r_data, collided)) in enumerate(zip(ops, trace)):
        if op.read:
            want = mem.get(op.r_addr, 0) & mask
            got = None if r_data is None else r_data & mask
            assert got == want, f"cycle {i} ({op}): read r_data {got}, want {want}"
        assert collided == 0, f"cycle {i} ({op}): collided set under the rules"
        if op.write:
            mem[op.w_addr] = op.w_data


_MODES = [(0.9, 0.5), (0.5, 0.5), (0.2, 0.9), (1.0, 0.0), (0.0, 1.0), (0.6, 0.8), (1.0, 0.3)]


def _random_ops(shape, depth, n, seed, *, pool=None, written_only=False, hold=True):
    """``n`` random cycles under the rules, then an idle cycle and a read of every address the
    sequence wrote (every write must have reached the RAM). Addresses come from ``pool`` (all
    of ``range(depth)`` by default); reads favour the last written addresses and the held
    write that has just gone to the RAM. With ``written_only``, only addresses already written
    are read (the SPRAM model starts as X). Without ``hold``, no cycle has both a read and a
    write."""
    rng = random.Random(seed)
    shape = Shape.cast(shape)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = lo + _mask(shape)
    pool = list(range(depth)) if pool is None else list(pool)
    held, h_addr, drained = False, None, None
    written, recent = set(), []
    ops = []
    p_read = p_write = 0.5
    for _ in range(n):
        if rng.random() < 0.05:
            p_read, p_write = rng.choice(_MODES)
        read = rng.random() < p_read
        r_addr = None
        if read:
            roll = rng.random()
            near = [drained] if drained is not None and roll < 0.5 else \
                recent[-1:] if roll < 0.65 else recent if roll < 0.85 else []
            choices = [a for a in (near or pool)
                       if not (held and a == h_addr) and (a in written or not written_only)]
            if choices:
                r_addr = rng.choice(choices)
            read = r_addr is not None
        # A write while one is held and a read takes the cycle would be lost.
        write = rng.random() < p_write and not (read and (held or not hold))
        w_addr = None
        if write:
            w_addr = rng.choice([a for a in pool if not (read and a == r_addr)] or [None])
            write = w_addr is not None
        w_data = rng.choice([lo, hi, 0, rng.randint(lo, hi)])
        # The unused port's address: often the held or written one, which must not count.
        r_addr = r_addr if read else rng.choice([h_addr if held else 0, w_addr or 0,
                                                 rng.choice(pool)])
        w_addr = w_addr if write else rng.choice([r_addr, rng.choice(pool)])
        ops.append(Op(read, r_addr, write, w_addr, w_data))
        drained = h_addr if held and not read else None  # the held write went to the RAM
        if write:
            written.add(w_addr)
            recent = (recent + [w_addr])[-4:]
            if read or held:
                held, h_addr = True, w_addr
        elif not read:
            held = False
    return ops + [IDLE] + [_rd(a) for a in sorted(written)]


def _assert_coverage(ops, hold):
    """The random sequence has enough of the cases that matter."""
    pairs = list(zip(ops, ops[1:]))
    both = sum(op.read and op.write for op in ops)
    assert both > 100 if hold else both == 0
    # a read of the address written directly in the cycle before
    assert sum(a.write and not a.read and b.read and b.r_addr == a.w_addr
               for a, b in pairs) > (20 if hold else 60)
    if not hold:
        return
    # a write behind a held one, and a held write through a streak of reads
    assert sum(a.read and a.write and b.write and not b.read for a, b in pairs) > 40
    assert sum(a.read and a.write and b.read and not b.write for a, b in pairs) > 25
    # a read of a held write's address in the cycle after it went to the RAM
    held, h_addr, hits = False, None, 0
    for a, b in pairs:
        if held and not a.read and b.read and b.r_addr == h_addr:
            hits += 1
        if a.write and (a.read or held):
            held, h_addr = True, a.w_addr
        elif not a.read:
            held = False
    assert hits > 100


# -- simulators -------------------------------------------------------------------------------
def _run_amaranth(dut, ops):
    """``(r_data, collided)`` in the cycle after each cycle of ``ops``, that is after its clock
    edge, with the next cycle's inputs applied (an idle cycle after the last)."""
    trace = []

    async def testbench(ctx):
        for i, op in enumerate([*ops, IDLE]):
            ctx.set(dut.r_en, op.read)
            ctx.set(dut.r_addr, op.r_addr)
            ctx.set(dut.w_en, op.write)
            ctx.set(dut.w_addr, op.w_addr)
            ctx.set(dut.w_data, op.w_data)
            if i:
                trace.append((ctx.get(dut.r_data), ctx.get(dut.collided)))
            if i < len(ops):
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return trace


try:
    SPRAM_MODEL = spram_model_text()
    NO_ICE40 = None if iverilog_bin() is not None else \
        "Icarus Verilog is not installed (apt-get install iverilog)"
except ModelNotFound as e:
    SPRAM_MODEL = None
    NO_ICE40 = f"the SB_SPRAM256KA model is missing: {e}"

_TB = """\
module tb;
  reg clk = 0, rst = 0, r_en = 0, w_en = 0;
  reg [{aw}:0] r_addr = 0, w_addr = 0;
  reg [{dw}:0] w_data = 0;
  wire [{dw}:0] r_data;
  wire collided;
  integer fd, a, b, c, d, e, first;
  bank dut(.clk(clk), .rst(rst), .r_en(r_en), .r_addr(r_addr), .r_data(r_data),
           .w_en(w_en), .w_addr(w_addr), .w_data(w_data), .collided(collided));
  initial begin
    rst = 1;  // a cycle of reset first, as a user of the design does
    #5 clk = 1;
    #5 clk = 0; rst = 0;
    fd = $fopen("{vectors}", "r");
    first = 1;
    while ($fscanf(fd, "%h %h %h %h %h\\n", a, b, c, d, e) == 5) begin
      r_en = a; r_addr = b; w_en = c; w_addr = d; w_data = e;
      #1 if (!first) $display("@ %h %b", r_data, collided);
      first = 0;
      #4 clk = 1;
      #5 clk = 0;
    end
    r_en = 0; w_en = 0; r_addr = 0; w_addr = 0; w_data = 0;
    #1 $display("@ %h %b", r_data, collided);
    $finish;
  end
endmodule
"""


def _run_icarus(bank, shape, depth, ops, folder):
    """Like :func:`_run_amaranth`, in Icarus with the SPRAM model; X reads as ``None``."""
    shape = Shape.cast(shape)
    aw = max(1, Shape.cast(range(depth)).width)
    mask = _mask(shape)
    vectors = folder / "vectors.txt"
    vectors.write_text("".join(f"{op.read:x} {op.r_addr:x} {op.write:x} {op.w_addr:x} "
                               f"{op.w_data & mask:x}\n" for op in ops))
    files = {"bank.v": export_verilog(bank, "bank"), "spram.v": SPRAM_MODEL,
             "tb.v": _TB.format(aw=aw - 1, dw=shape.width - 1, vectors=vectors)}
    for name, text in files.items():
        (folder / name).write_text(text)
    tools = iverilog_bin()
    subprocess.run([tools / "iverilog", "-g2012", "-s", "tb", "-o", folder / "sim.vvp",
                    *(folder / name for name in files)], check=True, capture_output=True)
    out = subprocess.run([tools / "vvp", "-n", folder / "sim.vvp"], check=True,
                         capture_output=True, text=True, cwd=folder).stdout
    return [(None if re.search("[^0-9a-f]", data) else int(data, 16),
             int(collided) if collided in ("0", "1") else None)
            for data, collided in re.findall(r"^@ (\S+) (\S+)$", out, re.MULTILINE)]


ICE40 = pytest.mark.skipif(NO_ICE40 is not None, reason=NO_ICE40 or "")
KINDS = ["generic", pytest.param("ice40", marks=ICE40)]


def _simulate(kind, ops, folder, *, shape=8, depth=16, hold=True, per_word=2):
    """``(r_data, collided)`` in the cycle after each cycle of ``ops`` on a bank of ``kind``
    (on the iCE40, ``per_word`` elements to a word: packed, though the default would not)."""
    if kind == "generic":
        return _run_amaranth(SinglePortBank(shape, depth, hold=hold), ops)
    bank = SinglePortBank(shape, depth, kind=kind, hold=hold, per_word=per_word)
    return _run_icarus(bank, shape, depth, ops, folder)


# -- random sequences -------------------------------------------------------------------------
@pytest.mark.parametrize("hold", [True, False])
@pytest.mark.parametrize(("shape", "depth", "seed"), [
    (unsigned(8), 11, 1),
    (signed(5), 7, 2),
    (unsigned(16), 2, 3),
    (unsigned(1), 1, 4),
    (signed(12), 300, 5),
])
def test_generic_bank_matches_the_model(shape, depth, seed, hold):
    pool = None if depth < 20 else [0, 1, 2, 3, 150, 151, depth - 2, depth - 1]
    ops = _random_ops(shape, depth, 2000, seed, pool=pool, hold=hold)
    if depth > 1:  # the sequence exercises what it should
        _assert_coverage(ops, hold)
    bank = SinglePortBank(shape, depth, hold=hold)
    _check(shape, ops, _run_amaranth(bank, ops))


def _spram_pool(depth):
    """Addresses in the first two words and at the ends of the primitives (for one, two and
    four elements to a word) and of the bank, and a few others."""
    pool = set(range(8)) | {depth - 1, depth - 2, depth // 3, depth // 3 + 1}
    for per in (1, 2, 4):
        for k in range(1, 4):
            edge = k * SPRAM_DEPTH * per
            pool |= set(range(edge - 4, edge + 4))
    return sorted(a for a in pool if 0 <= a < depth)


@ICE40
@pytest.mark.parametrize(("shape", "depth", "per_word", "hold"), [
    (unsigned(8), 40000, None, True),   # two elements to a word: two primitives, not three
    (unsigned(4), 70000, None, True),   # four to a word: two primitives, not three
    (signed(16), 40000, None, True),    # one to a word, three primitives
    (signed(5), 50, 2, True),           # two to a word, three bits of each field unused
    (unsigned(3), 37, 4, True),
    (unsigned(3), 37, 2, True),
    (unsigned(8), 40000, None, False),
    (unsigned(4), 70000, None, False),
])
def test_ice40_bank_matches_the_model(shape, depth, per_word, hold, tmp_path):
    ops = _random_ops(shape, depth, 2000, depth, pool=_spram_pool(depth), written_only=True,
                      hold=hold)
    _assert_coverage(ops, hold)
    bank = SinglePortBank(shape, depth, kind="ice40", hold=hold, per_word=per_word)
    _check(shape, ops, _run_icarus(bank, shape, depth, ops, tmp_path))


# -- directed sequences -----------------------------------------------------------------------
def _collided(trace):
    return [c for _, c in trace]


#: Each sequence breaks the rules with the hold register in its cycle ``at``.
COLLISIONS = [
    # A read and a write while a write is held: one write is lost.
    ("lost write", [_rw(1, 2, 7), _rw(3, 4, 8)], 1),
    ("lost write to the held address", [_rw(1, 2, 7), _rw(3, 2, 8)], 1),
    # A read of the held write's address, in the next cycle or after a streak of reads.
    ("read of the held write", [_rw(1, 2, 7), _rd(2)], 1),
    ("read of the held write later", [_rw(1, 2, 7), _rd(3), _rd(4), _rd(2)], 3),
    # A write held after a write without a read meets a read of its address.
    ("read of a write held behind another", [_rw(1, 2, 7), _wr(5, 9), _rd(5)], 2),
    # A read and a write of one address in one cycle.
    ("read and write of one address", [_rw(6, 6, 7)], 0),
    ("read and write of one address, none held", [_wr(3, 1), _rd(3), _rw(4, 4, 2)], 2),
]


@pytest.mark.parametrize(("name", "ops", "at"), COLLISIONS)
def test_collided_is_set_and_stays_set(name, ops, at, tmp_path):
    ops = [IDLE, *ops, IDLE, _rd(9), _wr(10, 1), IDLE]
    at += 1  # the leading idle cycle
    collided = _collided(_simulate("generic", ops, tmp_path))
    assert collided == [0] * at + [1] * (len(ops) - at), name


@pytest.mark.parametrize(("name", "ops"), [
    ("write meeting a read of another address", [_rw(1, 2, 7), IDLE]),
    ("held write and a read of another address", [_rw(1, 2, 7), _rd(3), _rd(1), IDLE]),
    ("held write drained by a write without a read", [_rw(1, 2, 7), _wr(5, 9), IDLE]),
    ("write without a read, then a read of it", [_wr(2, 7), _rd(2), _rw(2, 3, 1), IDLE]),
    ("read after the held write drained", [_rw(1, 2, 7), IDLE, _rd(2), _rw(2, 1, 3)]),
    ("enables low, addresses equal", [_rw(1, 2, 7), Op(False, 2, True, 2, 1),
                                      Op(True, 4, False, 4, 0), IDLE]),
])
def test_collided_stays_clear_under_the_rules(name, ops, tmp_path):
    assert _collided(_simulate("generic", ops, tmp_path)) == [0] * len(ops), name


@pytest.mark.parametrize("kind", KINDS)
def test_without_hold_a_write_that_meets_a_read_is_lost(kind, tmp_path):
    ops = [_wr(1, 4), _wr(2, 5), _wr(3, 6), _rd(3), _rw(1, 2, 7), IDLE, _rd(2), _rd(1)]
    trace = _simulate(kind, ops, tmp_path, hold=False)
    assert [trace[i][0] for i in (3, 4, 6, 7)] == [6, 4, 5, 4]
    assert _collided(trace) == [0, 0, 0, 0, 1, 1, 1, 1]
    # Enables low, addresses equal: no collision.
    ops = [_wr(1, 4), Op(True, 1, False, 1, 0), Op(False, 1, True, 1, 5), _rd(1)]
    trace = _simulate(kind, ops, tmp_path, hold=False)
    assert [trace[i][0] for i in (1, 3)] == [4, 5]
    assert _collided(trace) == [0] * 4


def _reads(ops, trace, *, collided=0):
    """The ``r_data`` after each read of ``ops``, checking ``collided`` throughout."""
    assert _collided(trace) == [collided] * len(trace)
    return [d for op, (d, _) in zip(ops, trace) if op.read]


# On kind "ice40" only addresses written before are read (the SPRAM model starts as X).
@pytest.mark.parametrize("kind", KINDS)
def test_a_write_that_meets_a_read_reaches_the_memory(kind, tmp_path):
    ops = [_wr(1, 11), _rw(1, 2, 22), IDLE, _rd(2)]
    assert _reads(ops, _simulate(kind, ops, tmp_path)) == [11, 22]


@pytest.mark.parametrize("kind", KINDS)
def test_a_held_write_waits_through_a_streak_of_reads(kind, tmp_path):
    ops = [_wr(1, 11), _wr(3, 33), _rw(1, 2, 22), _rd(3), _rd(1), _rd(3), IDLE, _rd(2), _rd(3)]
    assert _reads(ops, _simulate(kind, ops, tmp_path)) == [11, 33, 11, 33, 22, 33]


@pytest.mark.parametrize("kind", KINDS)
def test_held_writes_keep_their_order(kind, tmp_path):
    # The held write of 2 goes to the RAM while the next write of 2 is held: the last one wins.
    ops = [_wr(0, 1), _rw(0, 2, 5), _wr(2, 6), IDLE, _rd(2), _rw(0, 2, 7), _wr(2, 8), _wr(3, 9),
           IDLE, _rd(2), _rd(3)]
    assert _reads(ops, _simulate(kind, ops, tmp_path)) == [1, 6, 1, 8, 9]


@pytest.mark.parametrize("kind", KINDS)
def test_writes_to_neighbouring_elements_keep_each_other(kind, tmp_path):
    # 4-bit elements share a 16-bit SPRAM word four at a time; held writes too.
    ops = [_wr(a, a + 1) for a in range(8)] + [_rw(0, 5, 15), _wr(6, 14), IDLE]
    ops += [_rd(a) for a in range(8)]
    trace = _simulate(kind, ops, tmp_path, shape=4, per_word=4)
    assert _reads(ops, trace) == [1, 1, 2, 3, 4, 5, 15, 14, 8]


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_of_a_held_write_sees_the_contents_before_it(kind, tmp_path):
    ops = [_wr(2, 5), _rw(1, 2, 6), _rd(2), IDLE, _rd(2)]
    trace = _simulate(kind, ops, tmp_path)
    assert [trace[i][0] for i in (2, 4)] == [5, 6]
    assert _collided(trace) == [0, 0, 1, 1, 1]


# -- sizes and arguments ----------------------------------------------------------------------
@pytest.mark.parametrize(("depth", "width", "blocks"), [
    (25088, 8, 1),      # two 8-bit elements per 16-bit word
    (16384, 16, 1),
    (16385, 16, 2),
    (65536, 4, 1),      # four per word
    (65537, 4, 2),
    (32768, 8, 1),
    (32769, 5, 2),      # a 5-bit element takes two nibbles
    (16385, 9, 2),      # and a 9-bit one the whole word
    (49153, 12, 4),
    (1, 1, 1),
    (196608, 3, 3),
])
def test_spram_blocks(depth, width, blocks):
    assert spram_blocks(depth, width) == blocks


@pytest.mark.parametrize("width", range(1, 17))
def test_spram_blocks_fill_whole_primitives(width):
    per = 16 // (4 * -(-width // 4))
    full = SPRAM_DEPTH * per
    assert spram_blocks(full, width) == 1
    assert spram_blocks(full + 1, width) == 2
    assert spram_blocks(3 * full, width) == 3


@pytest.mark.parametrize("width", [0, 17, -1])
def test_spram_blocks_rejects_widths(width):
    with pytest.raises(ValueError, match="1 to 16 bits"):
        spram_blocks(100, width)


def _primitives(bank):
    return len(re.findall(r"^\s*SB_SPRAM256KA\s", export_verilog(bank, "bank"), re.MULTILINE))


@pytest.mark.parametrize(("shape", "depth", "per_word", "blocks"), [
    (8, 25088, None, 1),    # packed two to a word by default
    (8, 25088, 1, 2),
    (4, 70000, None, 2),
    (4, 70000, 2, 3),
    (signed(16), 40000, None, 3),
    (3, 100, 4, 1),
])
def test_ice40_bank_instantiates_its_primitives(shape, depth, per_word, blocks):
    bank = SinglePortBank(shape, depth, kind="ice40", per_word=per_word)
    assert _primitives(bank) == blocks
    if per_word is None:
        assert spram_blocks(depth, Shape.cast(shape).width) == blocks


@pytest.mark.parametrize(("width", "per_word"), [(5, 4), (9, 2), (16, 4), (8, 3), (4, 0)])
def test_ice40_bank_rejects_fields_that_do_not_fit(width, per_word):
    with pytest.raises(ValueError, match="do not fit"):
        SinglePortBank(width, 10, kind="ice40", per_word=per_word)


def test_bank_arguments():
    with pytest.raises(TypeError, match="hold"):
        SinglePortBank(8, 10, hold=1)
    with pytest.raises(ValueError, match="1 to 16 bits"):
        SinglePortBank(17, 10, kind="ice40")
    with pytest.raises(ValueError, match="kind"):
        SinglePortBank(8, 10, kind="ecp5")
    with pytest.raises(ValueError, match="Depth"):
        SinglePortBank(8, 0)
    bank = SinglePortBank(17, 10)   # a generic bank holds any width
    assert (bank.kind, bank.depth) == ("generic", 10)
    assert SinglePortBank(signed(16), 5, kind="ice40").kind == "ice40"
