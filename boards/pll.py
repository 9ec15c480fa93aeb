"""A clock from the board's PLL at a requested frequency, and a reset held until it locks.

The divider searches follow the vendors' tools: ``ecppll`` (Project Trellis) for the ECP5
``EHXPLLL``, ``icepll`` (Project IceStorm) for the iCE40 ``SB_PLL40``, and apicula's
``gowin_pll`` for the Gowin ``rPLL``. Each returns the settings whose output is closest to the
request within the PLL's limits (input, phase detector, VCO and output ranges), and the
frequency they actually give, which is the clock the design is timed at.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockDomain, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from intrain.errors import ConfigError

__all__ = ["PllError", "PllSettings", "ecp5_pll", "ice40_pll", "gowin_pll", "pll_settings",
           "Pll", "LIMITS"]


class PllError(ConfigError):
    """A clock the PLL cannot make; the message gives the range it can."""


@dataclass(frozen=True)
class PllSettings:
    """Divider settings of one PLL and what they give.

    ``params`` are the primitive's parameters (as Amaranth ``Instance`` keywords want them,
    without the ``p_`` prefix); ``vco_mhz`` and ``pfd_mhz`` are the VCO and phase detector
    frequencies, ``out_mhz`` the output.
    """

    family: str
    primitive: str
    in_mhz: float
    requested_mhz: float
    out_mhz: float
    vco_mhz: float
    pfd_mhz: float
    params: dict

    @property
    def error_mhz(self) -> float:
        return self.out_mhz - self.requested_mhz


#: Frequency limits in MHz: (in_min, in_max, pfd_min, pfd_max, vco_min, vco_max, out_min,
#: out_max), from ecppll, icepll and gowin_pll (GW1NR-9 C6/I5).
LIMITS = {
    "ecp5": (8.0, 400.0, 3.125, 400.0, 400.0, 800.0, 3.125, 400.0),
    "ice40": (10.0, 133.0, 10.0, 133.0, 533.0, 1066.0, 16.0, 275.0),
    "gowin": (3.0, 400.0, 3.0, 400.0, 400.0, 1200.0, 3.125, 600.0),
}


def _check_request(family, in_mhz, out_mhz):
    in_min, in_max, *_, out_min, out_max = LIMITS[family]
    if not isinstance(out_mhz, (int, float)) or isinstance(out_mhz, bool) \
            or not out_min <= out_mhz <= out_max:
        raise PllError(f"clock must be from {out_min:g} to {out_max:g} MHz for the {family} PLL, "
                       f"not {out_mhz!r}")
    if not in_min <= in_mhz <= in_max:
        raise PllError(f"the {family} PLL takes {in_min:g} to {in_max:g} MHz in, not {in_mhz:g}")


def ecp5_pll(in_mhz: float, out_mhz: float) -> PllSettings:
    """``EHXPLLL`` with CLKOP fed back (as ``ecppll``): ``out = in / CLKI_DIV * CLKFB_DIV``,
    ``vco = out * CLKOP_DIV``."""
    _check_request("ecp5", in_mhz, out_mhz)
    _, _, pfd_min, pfd_max, vco_min, vco_max, out_min, out_max = LIMITS["ecp5"]
    best = None
    for refclk_div in range(1, 129):
        pfd = in_mhz / refclk_div
        if not pfd_min <= pfd <= pfd_max:
            continue
        for fb_div in range(1, 81):
            out = pfd * fb_div
            if not out_min <= out <= out_max:
                continue
            for out_div in range(1, 129):
                vco = out * out_div
                if not vco_min <= vco <= vco_max:
                    continue
                err = abs(out - out_mhz)
                # Closest output; on a tie the VCO nearest the middle of its range, as ecppll.
                key = (round(err, 9), round(abs(vco - (vco_min + vco_max) / 2), 6), -vco)
                if best is None or key < best[0]:
                    best = (key, refclk_div, fb_div, out_div, out, vco, pfd)
    if best is None:
        raise PllError(f"the ECP5 PLL cannot make {out_mhz:g} MHz from {in_mhz:g} MHz")
    _, refclk_div, fb_div, out_div, out, vco, pfd = best
    params = {
        "PLLRST_ENA": "DISABLED", "INTFB_WAKE": "DISABLED", "STDBY_ENABLE": "DISABLED",
        "DPHASE_SOURCE": "DISABLED", "OUTDIVIDER_MUXA": "DIVA", "OUTDIVIDER_MUXB": "DIVB",
        "OUTDIVIDER_MUXC": "DIVC", "OUTDIVIDER_MUXD": "DIVD",
        "CLKI_DIV": refclk_div, "CLKOP_ENABLE": "ENABLED", "CLKOP_DIV": out_div,
        "CLKOP_CPHASE": out_div - 1, "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP",
        "CLKFB_DIV": fb_div,
    }
    return PllSettings("ecp5", "EHXPLLL", in_mhz, out_mhz, out, vco, pfd, params)


def _ice40_filter_range(pfd: float) -> int:
    """``FILTER_RANGE`` for a phase detector frequency, as icepll."""
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if pfd < limit:
            return value
    return 6


def ice40_pll(in_mhz: float, out_mhz: float) -> PllSettings:
    """``SB_PLL40`` in simple feedback (as ``icepll``): ``out = in / (DIVR + 1) * (DIVF + 1) /
    2 ** DIVQ``."""
    _check_request("ice40", in_mhz, out_mhz)
    _, _, pfd_min, pfd_max, vco_min, vco_max, out_min, out_max = LIMITS["ice40"]
    best = None
    for divr in range(16):
        pfd = in_mhz / (divr + 1)
        if not pfd_min <= pfd <= pfd_max:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not vco_min <= vco <= vco_max:
                continue
            for divq in range(1, 7):
                out = vco / (1 << divq)
                if not out_min <= out <= out_max:
                    continue
                key = round(abs(out - out_mhz), 9)
                if best is None or key < best[0]:
                    best = (key, divr, divf, divq, out, vco, pfd)
    if best is None:
        raise PllError(f"the iCE40 PLL cannot make {out_mhz:g} MHz from {in_mhz:g} MHz")
    _, divr, divf, divq, out, vco, pfd = best
    params = {
        "FEEDBACK_PATH": "SIMPLE", "DIVR": divr, "DIVF": divf, "DIVQ": divq,
        "FILTER_RANGE": _ice40_filter_range(pfd),
    }
    return PllSettings("ice40", "SB_PLL40_PAD", in_mhz, out_mhz, out, vco, pfd, params)


_GOWIN_ODIV = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)


def gowin_pll(in_mhz: float, out_mhz: float, device: str = "GW1NR-9C") -> PllSettings:
    """``rPLL`` (as apicula's ``gowin_pll``): ``out = in * (FBDIV_SEL + 1) / (IDIV_SEL + 1)``,
    ``vco = out * ODIV_SEL``."""
    _check_request("gowin", in_mhz, out_mhz)
    _, _, pfd_min, pfd_max, vco_min, vco_max, out_min, out_max = LIMITS["gowin"]
    best = None
    for idiv in range(64):
        pfd = in_mhz / (idiv + 1)
        if not pfd_min <= pfd <= pfd_max:
            continue
        for fbdiv in range(64):
            out = in_mhz * (fbdiv + 1) / (idiv + 1)
            if not out_min < out < out_max:
                continue
            for odiv in _GOWIN_ODIV:
                vco = out * odiv
                if not vco_min < vco < vco_max:
                    continue
                key = round(abs(out - out_mhz), 9)
                if best is None or key < best[0]:
                    best = (key, idiv, fbdiv, odiv, out, vco, pfd)
    if best is None:
        raise PllError(f"the Gowin PLL cannot make {out_mhz:g} MHz from {in_mhz:g} MHz")
    _, idiv, fbdiv, odiv, out, vco, pfd = best
    params = {
        "FCLKIN": f"{in_mhz:g}", "DEVICE": device,
        "DYN_IDIV_SEL": "false", "IDIV_SEL": idiv,
        "DYN_FBDIV_SEL": "false", "FBDIV_SEL": fbdiv,
        "DYN_ODIV_SEL": "false", "ODIV_SEL": odiv,
        "PSDA_SEL": "0000", "DYN_DA_EN": "false", "DUTYDA_SEL": "1000",
        "CLKOUT_FT_DIR": 1, "CLKOUTP_FT_DIR": 1, "CLKOUT_DLY_STEP": 0, "CLKOUTP_DLY_STEP": 0,
        "CLKFB_SEL": "internal", "CLKOUT_BYPASS": "false", "CLKOUTP_BYPASS": "false",
        "CLKOUTD_BYPASS": "false", "DYN_SDIV_SEL": 2, "CLKOUTD_SRC": "CLKOUT",
        "CLKOUTD3_SRC": "CLKOUT",
    }
    return PllSettings("gowin", "rPLL", in_mhz, out_mhz, out, vco, pfd, params)


def pll_settings(family: str, in_mhz: float, out_mhz: float) -> PllSettings:
    """The PLL settings of ``family`` (``"ecp5"``, ``"ice40"``, ``"gowin"``)."""
    try:
        search = {"ecp5": ecp5_pll, "ice40": ice40_pll, "gowin": gowin_pll}[family]
    except KeyError:
        raise PllError(f"no PLL for the FPGA family {family!r}") from None
    return search(in_mhz, out_mhz)


class Pll(wiring.Component):
    """The board's PLL making the ``sync`` clock from the oscillator, and a reset that holds
    ``sync`` until the PLL locks (and while ``rst`` is high), released synchronously. It drives
    the clock and reset of the domain; the parent defines the domain.

    Parameters
    ----------
    settings : PllSettings
        From :func:`pll_settings`.

    Members
    -------
    clk_in : ``In(1)``
        The oscillator (for the iCE40, the pad itself: connect the pin's raw I/O port via
        ``pad``).
    rst : ``In(1)``
        Extra reset request (a button), asynchronous.
    locked : ``Out(1)``
    """

    def __init__(self, settings: PllSettings, *, pad=None, domain="sync"):
        self.settings = settings
        self._pad = pad
        self._domain = domain
        super().__init__({"clk_in": In(1), "rst": In(1), "locked": Out(1)})

    def elaborate(self, platform):
        m = Module()
        s = self.settings
        domain = self._domain
        clk = Signal(name="pll_clk")
        params = {f"p_{k}": v for k, v in s.params.items()}
        if s.family == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{s.in_mhz:g}",
                a_FREQUENCY_PIN_CLKOP=f"{s.out_mhz:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                **params,
                i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, i_CLKFB=clk,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
                i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=clk, o_LOCK=self.locked,
            )
        elif s.family == "ice40":
            if self._pad is None:
                raise ValueError("The iCE40 PLL needs the clock pin's pad")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", **params,
                i_PACKAGEPIN=self._pad, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk, o_LOCK=self.locked,
            )
        elif s.family == "gowin":
            m.submodules.pll = Instance(
                "rPLL", **params,
                i_CLKIN=self.clk_in, i_CLKFB=0, i_RESET=0, i_RESET_P=0,
                i_FBDSEL=0, i_IDSEL=0, i_ODSEL=0, i_PSDA=0, i_DUTYDA=0, i_FDLY=0,
                o_CLKOUT=clk, o_LOCK=self.locked,
            )
        else:  # pragma: no cover - pll_settings refuses other families
            raise ValueError(s.family)
        m.d.comb += ClockSignal(domain).eq(clk)
        # Reset until locked: asynchronous assertion, synchronous release in the new domain.
        if s.family != "ecp5":
            m.submodules.reset_sync = ResetSynchronizer(~self.locked | self.rst, domain=domain)
            return m
        # ECP5: the released reset goes out on a global network (a DCCA), as the clock does:
        # routed through the fabric to every register of the engine it took 11.4 ns (the
        # ULX3S default's critical path ended in the tensor CRC's word register).
        m.domains.reset_src = ClockDomain("reset_src", local=True)
        m.d.comb += ClockSignal("reset_src").eq(clk)
        m.submodules.reset_sync = ResetSynchronizer(~self.locked | self.rst, domain="reset_src")
        m.submodules.reset_buf = Instance("DCCA", i_CLKI=ResetSignal("reset_src"), i_CE=1,
                                          o_CLKO=ResetSignal(domain))
        return m
