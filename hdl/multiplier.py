"""Registered multipliers of the systolic array's processing elements, generic or mapped by hand
onto an FPGA family's DSP primitive.

``dsp`` selects the mapping (:data:`DSP_FAMILIES`):

``"generic"``
    ``a * b`` into one fabric register; the synthesis tool infers what it likes. Product
    latency 1.
``"ice40"``
    iCE40 ``SB_MAC16`` in its dual 8x8 mode (``MODE_8x8 = 1``): two independent 8x8 products
    per DSP, ``A[15:8] * B[15:8]`` on the top half (``O[31:16]``) and ``A[7:0] * B[7:0]`` on the
    bottom half (``O[15:0]``), each held in the half's 8x8 multiplier output register
    (``TOP_8x8_MULT_REG``, ``BOT_8x8_MULT_REG``; ``TOPOUTPUT_SELECT = BOTOUTPUT_SELECT = 2``).
    ``A_SIGNED`` applies to both bytes of ``A``, ``B_SIGNED`` to both bytes of ``B`` (the
    simulation model in yosys' ``ice40/cells_sim.v`` sign-extends the low bytes only in 8x8
    mode, as the vendor's model does), so the PEs sharing a DSP share their operand shapes,
    which all PEs of an array do. Processing elements ``2j`` (bottom) and ``2j + 1`` (top), in
    row-major order, share DSP ``j``; with an odd count the top half of the last DSP is unused.
    Yosys never infers this mode. Product latency 1, as generic.
``"ecp5"``
    ECP5 ``MULT18X18D`` with its input (A and B), pipeline and output registers, followed by one
    fabric register, so the accumulator adds a product that starts from a flip-flop next to it.
    Product latency 4.
``"gowin"``
    Gowin ``MULT9X9`` (GW1N/GW2A; the primitive ``synth_gowin`` infers and nextpnr-himbaechel
    places in a GW1NR-9's DSP macro) with its input registers (``AREG``, ``BREG``) and output
    register (``OUT_REG``). Product latency 2.
``"ternary"``
    No multiplier: the A operand is a ternary weight (``signed(2)``, -1, 0 or +1; the value -2
    is not a weight and gives ``-b`` too) and the product ``b``, ``-b`` or 0 is a multiplexer in
    the fabric, into one register, on any family. Product latency 1, as generic. For the
    products with ternary weights (forward ``T . A``; backward ``E . T`` with the operands
    swapped, which transposes the tile), in as many processing elements as the LUTs allow.

Every register of a primitive is clocked by the ``sync`` domain with its clock enable driven by
``en`` (the array's stall signal), so a stall freezes the whole product pipeline; their resets
are tied off (the array's flags, not the products, are reset). Operands are sign-extended
(signed shapes) or zero-extended (unsigned shapes) to the primitive's width, whose signedness
inputs follow the operand shapes; the product, which fits the primitive's output exactly, is
read back in the shape of ``a * b``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, ClockSignal, Const, Mux, Shape, Signal
from amaranth.hdl import Instance

__all__ = ["DSP_FAMILIES", "DspFamily", "dsp_family", "check_dsp", "product_cycles",
           "registered_products"]


@dataclass(frozen=True)
class DspFamily:
    """How the products of one FPGA family are built: ``primitive`` (``None``: inferred), the
    widest operands it holds (``max_width`` bits, signed or unsigned), the cycles from operands
    to a registered product (``product_cycles``) and how many products share one primitive."""

    name: str
    primitive: str | None
    max_width: int | None
    product_cycles: int
    products_per_primitive: int = 1

    def primitives(self, n_products: int) -> int:
        """Primitives used for ``n_products`` products (0 for the generic mapping)."""
        if self.primitive is None:
            return 0
        return -(-n_products // self.products_per_primitive)


DSP_FAMILIES = {
    "generic": DspFamily("generic", None, None, 1),
    "ice40": DspFamily("ice40", "SB_MAC16", 8, 1, products_per_primitive=2),
    "ecp5": DspFamily("ecp5", "MULT18X18D", 18, 4),
    "gowin": DspFamily("gowin", "MULT9X9", 9, 2),
    "ternary": DspFamily("ternary", None, None, 1),
}
"""The product mappings by name."""


def dsp_family(dsp) -> DspFamily:
    """The :class:`DspFamily` named ``dsp`` (raises :class:`ValueError` for an unknown name)."""
    if not isinstance(dsp, str) or dsp not in DSP_FAMILIES:
        raise ValueError(f"DSP mapping must be one of {', '.join(map(repr, DSP_FAMILIES))}, "
                         f"not {dsp!r}")
    return DSP_FAMILIES[dsp]


def _describe(shape: Shape) -> str:
    return f"{'signed' if shape.signed else 'unsigned'}({shape.width})"


def check_dsp(dsp, a_shape, b_shape) -> str:
    """``dsp`` if its primitive multiplies operands of ``a_shape`` and ``b_shape``; otherwise
    :class:`ValueError` saying which operand is too wide."""
    family = dsp_family(dsp)
    if family.name == "ternary" and Shape.cast(a_shape) != Shape(2, True):
        raise ValueError(f"DSP mapping 'ternary' takes ternary weights as the A operand, "
                         f"signed(2), not {_describe(Shape.cast(a_shape))}; use another mapping "
                         f"for products of wider operands")
    if family.max_width is not None:
        for what, shape in (("A", Shape.cast(a_shape)), ("B", Shape.cast(b_shape))):
            if shape.width > family.max_width:
                raise ValueError(
                    f"DSP mapping {dsp!r} ({family.primitive}) multiplies operands of at most "
                    f"{family.max_width} bits, but the {what} operand is {_describe(shape)}; "
                    f"use narrower operands or dsp='generic'")
    return dsp


def product_cycles(dsp) -> int:
    """Cycles from a processing element's operands to its registered product."""
    return dsp_family(dsp).product_cycles


def _extend(m, value, width: int, signed: bool, name: str) -> Signal:
    """``value`` sign- or zero-extended to ``width`` bits (by the shape of ``value``)."""
    wide = Signal(Shape(width, signed), name=name)
    m.d.comb += wide.eq(value)
    return wide


def _product(bits, a_shape: Shape, b_shape: Shape):
    """A primitive's product output read as a value: two's complement when an operand is
    signed, unsigned otherwise (the product fits either way)."""
    return bits.as_signed() if a_shape.signed or b_shape.signed else bits.as_unsigned()


def _from_bits(m, bits, prod_shape: Shape, name: str) -> Signal:
    """The product value ``bits`` (see :func:`_product`) as a signal of ``prod_shape``."""
    prod = Signal(prod_shape, name=name)
    m.d.comb += prod.eq(bits)
    return prod


def registered_products(m, dsp, operands, en, prod_shape, names) -> list:
    """Build the registered products ``a * b`` of ``operands`` (a list of ``(a, b)`` values,
    every ``a`` of one shape, every ``b`` of one shape) with the mapping ``dsp``, advancing only
    while ``en`` is high; returns one signal of ``prod_shape`` per pair, the product of the
    operands presented :func:`product_cycles` enabled cycles earlier. ``names`` gives each
    product's name (``prod_0_1``, ...)."""
    family = dsp_family(dsp)
    prod_shape = Shape.cast(prod_shape)
    if not operands:
        return []
    a_shape = Shape.cast(operands[0][0].shape())
    b_shape = Shape.cast(operands[0][1].shape())
    check_dsp(dsp, a_shape, b_shape)
    if family.name in ("generic", "ternary"):
        prods = []
        for (a, b), name in zip(operands, names):
            prod = Signal(prod_shape, name=name)
            value = a * b if family.name == "generic" else Mux(a[1], -b, Mux(a[0], b, 0))
            with m.If(en):
                m.d.sync += prod.eq(value)
            prods.append(prod)
        return prods
    build = {"ice40": _ice40, "ecp5": _ecp5, "gowin": _gowin}[family.name]
    return build(m, operands, en, prod_shape, names, a_shape, b_shape)


def _bit(value: int) -> Const:
    return Const(int(value), 1)


def _ice40(m, operands, en, prod_shape, names, a_shape, b_shape):
    prods = []
    for j in range(0, len(operands), 2):
        pair = operands[j:j + 2]
        ext = []
        for k, (a, b) in enumerate(pair):
            ext.append((_extend(m, a, 8, a_shape.signed, f"{names[j + k]}_a"),
                        _extend(m, b, 8, b_shape.signed, f"{names[j + k]}_b")))
        if len(ext) == 1:  # odd count: the top half multiplies zeros
            ext.append((Const(0, 8), Const(0, 8)))
        (a_bot, b_bot), (a_top, b_top) = ext
        o = Signal(32, name=f"mac16_{j // 2}_o")
        m.submodules[f"mac16_{j // 2}"] = Instance(
            "SB_MAC16",
            p_NEG_TRIGGER=_bit(0), p_C_REG=_bit(0), p_A_REG=_bit(0), p_B_REG=_bit(0),
            p_D_REG=_bit(0),
            p_TOP_8x8_MULT_REG=_bit(1), p_BOT_8x8_MULT_REG=_bit(1),
            p_PIPELINE_16x16_MULT_REG1=_bit(0), p_PIPELINE_16x16_MULT_REG2=_bit(0),
            p_TOPOUTPUT_SELECT=Const(2, 2), p_TOPADDSUB_LOWERINPUT=Const(0, 2),
            p_TOPADDSUB_UPPERINPUT=_bit(0), p_TOPADDSUB_CARRYSELECT=Const(0, 2),
            p_BOTOUTPUT_SELECT=Const(2, 2), p_BOTADDSUB_LOWERINPUT=Const(0, 2),
            p_BOTADDSUB_UPPERINPUT=_bit(0), p_BOTADDSUB_CARRYSELECT=Const(0, 2),
            p_MODE_8x8=_bit(1), p_A_SIGNED=_bit(a_shape.signed), p_B_SIGNED=_bit(b_shape.signed),
            i_CLK=ClockSignal("sync"), i_CE=en,
            i_A=Cat(a_bot, a_top), i_B=Cat(b_bot, b_top), i_C=Const(0, 16), i_D=Const(0, 16),
            i_AHOLD=_bit(0), i_BHOLD=_bit(0), i_CHOLD=_bit(0), i_DHOLD=_bit(0),
            i_IRSTTOP=_bit(0), i_IRSTBOT=_bit(0), i_ORSTTOP=_bit(0), i_ORSTBOT=_bit(0),
            i_OLOADTOP=_bit(0), i_OLOADBOT=_bit(0), i_ADDSUBTOP=_bit(0), i_ADDSUBBOT=_bit(0),
            i_OHOLDTOP=_bit(0), i_OHOLDBOT=_bit(0), i_CI=_bit(0), i_ACCUMCI=_bit(0),
            i_SIGNEXTIN=_bit(0),
            o_O=o,
        )
        for k in range(len(pair)):
            half = o[16 * k:16 * k + 16]
            prods.append(_from_bits(m, _product(half, a_shape, b_shape), prod_shape,
                                    names[j + k]))
    return prods


def _ecp5(m, operands, en, prod_shape, names, a_shape, b_shape):
    prods = []
    for (a, b), name in zip(operands, names):
        a18 = _extend(m, a, 18, a_shape.signed, f"{name}_a")
        b18 = _extend(m, b, 18, b_shape.signed, f"{name}_b")
        p = Signal(36, name=f"{name}_p")
        regs = {}
        for reg in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT"):
            regs[f"p_REG_{reg}_CLK"] = "CLK0"
            regs[f"p_REG_{reg}_CE"] = "CE0"
            regs[f"p_REG_{reg}_RST"] = "RST0"
        ports = {}
        for k in range(18):
            ports[f"i_A{k}"] = a18[k]
            ports[f"i_B{k}"] = b18[k]
            ports[f"i_C{k}"] = _bit(0)
        for k in range(36):
            ports[f"o_P{k}"] = p[k]
        for k in range(4):
            ports[f"i_CLK{k}"] = ClockSignal("sync") if k == 0 else _bit(0)
            ports[f"i_CE{k}"] = en if k == 0 else _bit(0)
            ports[f"i_RST{k}"] = _bit(0)
        m.submodules[f"mult_{name}"] = Instance(
            "MULT18X18D",
            **regs,
            p_REG_INPUTC_CLK="NONE", p_CAS_MATCH_REG="FALSE", p_MULT_BYPASS="DISABLED",
            p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT",
            i_SIGNEDA=_bit(a_shape.signed), i_SIGNEDB=_bit(b_shape.signed),
            i_SOURCEA=_bit(0), i_SOURCEB=_bit(0),
            **ports,
        )
        # One fabric register after the DSP's output register.
        prod = Signal(prod_shape, name=name)
        with m.If(en):
            m.d.sync += prod.eq(_product(p, a_shape, b_shape))
        prods.append(prod)
    return prods


def _gowin(m, operands, en, prod_shape, names, a_shape, b_shape):
    prods = []
    for (a, b), name in zip(operands, names):
        a9 = _extend(m, a, 9, a_shape.signed, f"{name}_a")
        b9 = _extend(m, b, 9, b_shape.signed, f"{name}_b")
        dout = Signal(18, name=f"{name}_dout")
        m.submodules[f"mult_{name}"] = Instance(
            "MULT9X9",
            p_AREG=_bit(1), p_BREG=_bit(1), p_OUT_REG=_bit(1), p_PIPE_REG=_bit(0),
            p_ASIGN_REG=_bit(0), p_BSIGN_REG=_bit(0), p_SOA_REG=_bit(0),
            p_MULT_RESET_MODE="SYNC",
            i_A=a9, i_B=b9, i_SIA=Const(0, 9), i_SIB=Const(0, 9),
            i_ASIGN=_bit(a_shape.signed), i_BSIGN=_bit(b_shape.signed),
            i_ASEL=_bit(0), i_BSEL=_bit(0),
            i_CE=en, i_CLK=ClockSignal("sync"), i_RESET=_bit(0),
            o_DOUT=dout,
        )
        prods.append(_from_bits(m, _product(dout, a_shape, b_shape), prod_shape, name))
    return prods
