"""The one configuration object from which the golden model, the RTL and the simulations are built.

A :class:`Config` holds everything that defines a trainer: layer sizes, per-layer bit widths
W-A-G-E, the power-of-two learning-rate schedule, batch size, weight clip variant, random-number
lanes and seeds, accumulator width and the systolic array shape. It is immutable and validated on
construction: an invalid value raises :class:`~intrain.errors.ConfigError` naming the field and
the allowed range. :meth:`Config.plan` derives the per-layer constants of ``shared/SPEC.md``
(scale shifts, clip limits, accumulator widths) exactly, with integer arithmetic only.

This module imports nothing else of intrain but its errors and the LFSR specification.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

from intrain.errors import ConfigError
from intrain.fileio import write_text
from intrain.lfsr_spec import LfsrSpec

__all__ = ["Bits", "Config", "LayerPlan", "ConfigError", "DEFAULT_LAYERS", "DEFAULT_LR_SCHEDULE",
           "CONV_LR_SCHEDULE"]

DEFAULT_LAYERS = (64, 256, 10)
DEFAULT_LR_SCHEDULE = ((0, 2), (30, 1), (50, 0), (65, -1))
#: A convolutional network's default schedule: one step (a factor of 2) below the default, and
#: one more step for the last 5 epochs (fewer ternary weights flip back and forth at the end).
CONV_LR_SCHEDULE = ((0, 1), (30, 0), (50, -1), (65, -2), (75, -3))


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")
    return value


#: The fewest samples of a training step whose weights are in single-port RAM: the recomputed
#: gradient reads a row every ``batch`` cycles, and its write needs a free cycle between.
SPRAM_MIN_BATCH = 2

@dataclass(frozen=True)
class Bits:
    """Bit widths of one layer: weights (forward view), activations, gradients, errors."""

    w: int = 2
    a: int = 8
    g: int = 8
    e: int = 8

    def __post_init__(self):
        _check_int("bits.w", self.w, 2, 8)
        _check_int("bits.a", self.a, 2, 16)
        _check_int("bits.g", self.g, self.w, 16)
        _check_int("bits.e", self.e, 2, 16)

    @classmethod
    def parse(cls, text) -> Bits:
        """Parse ``"W-A-G-E"`` such as ``"2-8-8-8"``."""
        if isinstance(text, Bits):
            return text
        if isinstance(text, dict):
            return cls(**_table("bits", text, {f.name for f in fields(cls)}))
        parts = str(text).split("-")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"bits must look like W-A-G-E, for example 2-8-8-8, not {text!r}")
        return cls(*(int(p) for p in parts))

    def __str__(self):
        return f"{self.w}-{self.a}-{self.g}-{self.e}"


@dataclass(frozen=True)
class LayerPlan:
    """Constants of one weight layer (fully connected or convolution), derived from a
    :class:`Config`.

    All quantities are integers; the real value of a forward accumulator is
    ``acc * 2 ** -out_shift``.

    Attributes
    ----------
    index : int
        Layer number, 1-based as in SPEC.md.
    n_in, n_out : int
        Fan-in and fan-out; a convolution's weights are ``n_out`` rows of ``n_in = c_in * k * k``
        (SPEC.md section 4b).
    bits : Bits
        This layer's widths; ``bits.a`` is the width of its output activations.
    in_bits : int
        Width of its input activations.
    last : bool
        The output layer: no ReLU, no QA.
    alpha_log2 : int
        ``log2(alpha_l)``, the layer scale.
    out_shift : int
        ``(w - 1) + (in_bits - 1) + alpha_log2``.
    qa_shift : int
        QA divides the accumulator by ``2 ** qa_shift`` (negative: multiplies).
    a_max : int
        ``2 ** (bits.a - 1) - 1``, QA's saturation value.
    e_max : int
        ``2 ** (bits.e - 1) - 1``.
    t_max : int
        ``2 ** (bits.w - 1) - 1``, the largest forward weight.
    t_shift : int
        Stored weights are in units of ``2 ** (1 - g)``; ``T = clip(round(W / 2 ** t_shift))``.
    w_max : int
        Stored weights are clipped to ``[-w_max, w_max]``.
    label : int
        The value 1.0 in output-accumulator units (``2 ** out_shift``), for the output error.
    init_limit : float
        Weights start uniform in ``[-init_limit, init_limit]`` (real units).
    acc_bits_forward, acc_bits_backward, acc_bits_gradient : int
        Signed widths that hold every forward accumulator, every backward product
        ``T^T . E`` and every batch-summed gradient, from fan-in, fan-out and batch (and, for a
        convolution, the kernel and the output positions).
    kernel : int
        A convolution's kernel size ``k`` (odd; stride 1, zero padding ``(k - 1) / 2``); 0 for a
        fully connected layer.
    pool : int
        The max-pool ``pool x pool`` after a convolution (1: none).
    in_shape : tuple of int
        A convolution's input ``(C, H, W)``; ``()`` for a fully connected layer.
    """

    index: int
    n_in: int
    n_out: int
    bits: Bits
    in_bits: int
    last: bool
    alpha_log2: int
    out_shift: int
    qa_shift: int
    a_max: int
    e_max: int
    t_max: int
    t_shift: int
    w_max: int
    label: int
    init_limit: float
    acc_bits_forward: int
    acc_bits_backward: int
    acc_bits_gradient: int
    kernel: int = 0
    pool: int = 1
    in_shape: tuple[int, ...] = ()

    @property
    def in_max(self) -> int:
        return (1 << (self.in_bits - 1)) - 1

    @property
    def conv(self) -> bool:
        """A convolution layer (else fully connected)."""
        return self.kernel > 0

    @property
    def stored_columns(self) -> tuple[int, ...] | None:
        """For a convolution with ``c_in > 1``, the column of the ``c_in * k * k`` weight view
        (SPEC.md section 4b, row-major in ``c, i, j``) that each column of the engine's stored
        weights holds: the engine keeps them channel-last, ``(i, j, c)`` row-major, so that a
        kernel tap's weights are a row slice. None where both orders agree (fully connected
        layers, ``c_in = 1``). The update's draws follow the stored order (:meth:`Config.
        draws_per_update`), which the golden model takes from here."""
        if not self.conv or self.in_shape[0] == 1:
            return None
        taps = self.kernel * self.kernel
        return tuple(c * taps + t for t in range(taps) for c in range(self.in_shape[0]))

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of one sample's output: ``(n_out, H / pool, W / pool)`` or ``(n_out,)``."""
        if not self.conv:
            return (self.n_out,)
        _, h, w = self.in_shape
        return (self.n_out, h // self.pool, w // self.pool)


def _signed_bits(bound: int) -> int:
    """Width of a signed integer that holds every value in ``[-bound, bound]``."""
    return bound.bit_length() + 1


def _alpha_log2(n_in: int, kw: int) -> int:
    """``log2 max(Shift(L_min / L_init), 1)`` with ``L_min = 1.5 * 2 ** (1 - kw)`` and
    ``L_init = sqrt(3 / n_in)``, exactly: ``(L_min / L_init) ** 2 = 3 * n_in / 4 ** kw``.

    ``round(log2 r)`` is the ``k`` with ``2 ** (2k - 1) <= r ** 2 < 2 ** (2k + 1)`` (``r ** 2`` is
    never a power of two times 2, since ``3 * n_in`` is not a power of two: no ties).
    """
    num, den = 3 * n_in, 4**kw
    # q = floor(log2(num / den)), exactly.
    q = num.bit_length() - den.bit_length()
    if (num << max(0, -q)) < (den << max(0, q)):
        q -= 1
    k = -((-q) // 2)
    return max(k, 0)


@dataclass(frozen=True)
class Config:
    """Everything that defines an integer trainer. Immutable; validated on construction.

    Parameters
    ----------
    layers : tuple of int
        Layer sizes from input to output, e.g. ``(64, 256, 10)``.
    bits : tuple of Bits
        W-A-G-E widths, one per weight layer (a single value is repeated for every layer).
    input_bits : int
        Width of the quantized input ``A_0`` (data mapped to [-1, 1]).
    batch_size : int
        Samples per training step.
    epochs : int
        Passes over the training set.
    lr_schedule : tuple of (int, int)
        ``(first_epoch, lam)`` pairs: from ``first_epoch`` on, the learning rate is ``2 ** lam``.
        The first pair starts at epoch 0. Unset: :data:`DEFAULT_LR_SCHEDULE`, or
        :data:`CONV_LR_SCHEDULE` for a network with convolutions.
    weight_clip : str
        ``"code"``: stored weights clipped to ``+-(1 - sigma(kW))`` (reference code);
        ``"paper"``: ``+-(1 - sigma(kG))``.
    seed : int
        Seeds weight initialisation, data shuffling and (unless given) the random lanes.
    rng_lanes : int
        Independent LFSR lanes of the stochastic rounder.
    rng_seeds : tuple of int or None
        One non-zero seed per lane; derived from ``seed`` when omitted (lanes evenly spaced around
        the LFSR cycle).
    lfsr : LfsrSpec
        Generator polynomial and draw width.
    acc_bits : int
        Width of the hardware accumulators; must hold every accumulator of every layer.
    array_rows, array_cols : int
        Shape of the systolic MAC array.
    apt : bool
        APT mode: each layer's error width ``kE_l`` starts at ``bits.e`` and grows while training
        (README, "APT mode"); off by default.
    apt_threshold : tuple of (int, int)
        ``(num, den)``: a layer's QE keeps enough of its tensor when
        ``|S - S^| * den <= num * S``; ``"NUM/DEN"`` is accepted.
    apt_step, apt_max : int
        A width that fails the threshold grows by ``apt_step`` bits, up to ``apt_max``.
    bit_error_rate : float
        Memory faults: after every update each bit of every stored weight flips with this
        probability (0 to 1; 0: none), as :mod:`intrain.fault_spec` defines.
    fault_seed : int or None
        Seeds the fault generators; ``seed ^ 1`` (a different seed) when omitted.
    recompute_gradients : tuple of int
        The memory plan of the hardware engine: the layers (numbered from 1) whose gradient
        ``G_l`` is not stored but computed twice, first for its maximum only, then straight into
        the update (:meth:`draws_per_update` gives the order of their draws); empty (the
        default): every ``G_l`` is stored. Needs ``rng_lanes >= array_cols``.
    spram : tuple of str
        The memories the hardware engine keeps in single-port RAM, the iCE40UP5K's SPRAM
        (four of 256 kbit beside its 120 kbit of block RAM; on other families single-port block
        RAM): ``"A0"`` (the input batch; the engine only reads it) and the weights ``"W{l}"``
        of a layer whose gradient is recomputed, on an engine of one MAC (1x1) with a batch of
        at least 2 and no memory faults (its update writes a row while the port is free).
        Empty (the default): every memory is dual-port block RAM.
    phase_counters : bool
        The engine counts its cycles and MAC-cycles per phase (forward, backward, gradient,
        update) besides the totals (the default). Off, a run reports the totals only: eight
        counters fewer, about 320 logic cells of a 2-layer engine on the iCE40UP5K.
    """

    layers: tuple[int, ...] = DEFAULT_LAYERS
    bits: tuple[Bits, ...] = (Bits(),)
    input_bits: int = 8
    batch_size: int = 64
    epochs: int = 80
    lr_schedule: tuple[tuple[int, int], ...] | None = None
    weight_clip: str = "code"
    seed: int = 0
    rng_lanes: int = 8
    rng_seeds: tuple[int, ...] | None = None
    lfsr: LfsrSpec = field(default_factory=LfsrSpec)
    acc_bits: int = 32
    array_rows: int = 8
    array_cols: int = 8
    apt: bool = False
    apt_threshold: tuple[int, int] = (43, 2048)
    apt_step: int = 4
    apt_max: int = 16
    bit_error_rate: float = 0.0
    fault_seed: int | None = None
    recompute_gradients: tuple[int, ...] = ()
    spram: tuple[str, ...] = ()
    phase_counters: bool = True

    def __post_init__(self):
        s = object.__setattr__
        layers = _layer_items(self.layers)
        geometry = _layer_geometry(layers)
        if not any("kernel" in g for g in geometry):
            layers = (geometry[0]["n_in"], *(g["n_out"] for g in geometry))  # plain sizes
        s(self, "layers", layers)
        s(self, "_geometry", geometry)
        n_weight_layers = len(geometry)

        bits = self.bits
        if isinstance(bits, (str, Bits, dict)):
            bits = (bits,)
        if not isinstance(bits, (tuple, list)):
            raise ConfigError(f"bits must be W-A-G-E, or a list of them, not {bits!r}")
        bits = tuple(Bits.parse(b) for b in bits)
        if len(bits) == 1:
            bits = bits * n_weight_layers
        if len(bits) != n_weight_layers:
            raise ConfigError(
                f"bits must give one W-A-G-E per weight layer ({n_weight_layers}) or one for all, "
                f"not {len(bits)}")
        s(self, "bits", bits)

        _check_int("input_bits", self.input_bits, 2, 16)
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_int("epochs", self.epochs, 1, 100000)
        sched = self.lr_schedule
        if sched is None:
            sched = CONV_LR_SCHEDULE if any("kernel" in g for g in geometry) else \
                DEFAULT_LR_SCHEDULE
        if isinstance(sched, str):
            sched = _parse_schedule(sched)
        try:
            sched = tuple((e, lam) for e, lam in sched)
        except (TypeError, ValueError):
            raise ConfigError(
                f"lr_schedule must be (first_epoch, lam) pairs, not {self.lr_schedule!r}") from None
        for i, (e, lam) in enumerate(sched):
            _check_int(f"lr_schedule[{i}].epoch", e, 0, 100000)
            _check_int(f"lr_schedule[{i}].lam", lam, -16, 16)
        if not sched or sched[0][0] != 0:
            raise ConfigError(f"lr_schedule must start at epoch 0, not {self.lr_schedule!r}")
        for i, (e, _) in enumerate(sched):
            if i and e <= sched[i - 1][0]:
                raise ConfigError(
                    f"lr_schedule epochs must increase, not {[p[0] for p in sched]!r}")
        s(self, "lr_schedule", sched)
        if self.weight_clip not in ("code", "paper"):
            raise ConfigError(f"weight_clip must be 'code' or 'paper', not {self.weight_clip!r}")
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("rng_lanes", self.rng_lanes, 1, 4096)
        lfsr = self.lfsr
        if not isinstance(lfsr, LfsrSpec):
            lfsr = _table("lfsr", lfsr, {"width", "taps", "draw_bits"})
            if not isinstance(lfsr.get("taps", ()), (tuple, list)):
                raise ConfigError(f"lfsr.taps must be a list of taps, not {lfsr['taps']!r}")
            lfsr = LfsrSpec(**{k: tuple(v) if k == "taps" else v for k, v in lfsr.items()})
            s(self, "lfsr", lfsr)
        _check_int("lfsr.draw_bits", lfsr.draw_bits, 1, 32)  # QG's fraction: 32 bits at most
        if self.rng_seeds is None:
            s(self, "rng_seeds", lfsr.lane_seeds(self.seed, self.rng_lanes))
        if not isinstance(self.rng_seeds, (tuple, list)):
            raise ConfigError(f"rng_seeds must be a list of seeds, not {self.rng_seeds!r}")
        seeds = tuple(self.rng_seeds)
        if len(seeds) != self.rng_lanes:
            raise ConfigError(
                f"rng_seeds must give one seed per lane ({self.rng_lanes}), not {len(seeds)}")
        for i, v in enumerate(seeds):
            _check_int(f"rng_seeds[{i}]", v, 1, lfsr.mask)
        if len(set(seeds)) != len(seeds):
            raise ConfigError("rng_seeds must be distinct: lanes may not share one sequence")
        s(self, "rng_seeds", seeds)
        _check_int("acc_bits", self.acc_bits, 8, 64)
        _check_int("array_rows", self.array_rows, 1, 256)
        _check_int("array_cols", self.array_cols, 1, 256)
        rate = self.bit_error_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ConfigError(f"bit_error_rate must be a probability from 0 to 1, not {rate!r}")
        s(self, "bit_error_rate", float(rate))
        s(self, "fault_seed", self.seed ^ 1 if self.fault_seed is None else self.fault_seed)
        _check_int("fault_seed", self.fault_seed, 0, 2**63 - 1)
        if not isinstance(self.phase_counters, bool):
            raise ConfigError(f"phase_counters must be true or false, not "
                              f"{self.phase_counters!r}")
        self._check_apt()
        self._check_recompute(n_weight_layers, geometry)
        self._check_spram(n_weight_layers)
        wide = self.error_plan([self.apt_max] * n_weight_layers) if self.apt else ()
        for p in self.plan + wide:
            need = max(p.acc_bits_forward, p.acc_bits_backward, p.acc_bits_gradient)
            if need > self.acc_bits:
                raise ConfigError(
                    f"acc_bits must be at least {need} for layer {p.index} "
                    f"({p.n_in}->{p.n_out}, batch {self.batch_size}"
                    f"{', errors of apt_max bits' if p in wide else ''}), not {self.acc_bits}")

    def _check_recompute(self, n_weight_layers, geometry):
        layers = self.recompute_gradients
        if isinstance(layers, int) and not isinstance(layers, bool):
            layers = (layers,)
        if not isinstance(layers, (tuple, list)):
            raise ConfigError(f"recompute_gradients must be a list of layer numbers, not "
                              f"{layers!r}")
        for i, v in enumerate(layers):
            _check_int(f"recompute_gradients[{i}]", v, 1, n_weight_layers)
            if "kernel" in geometry[v - 1]:
                raise ConfigError(f"recompute_gradients: layer {v} is a convolution; only fully "
                                  "connected layers' gradients are recomputed")
        if len(set(layers)) != len(layers):
            raise ConfigError(f"recompute_gradients names a layer twice: {list(layers)}")
        if layers and self.rng_lanes < self.array_cols:
            raise ConfigError(
                f"recompute_gradients needs rng_lanes >= array_cols (one draw per column of "
                f"the array's rows), not {self.rng_lanes} < {self.array_cols}")
        object.__setattr__(self, "recompute_gradients", tuple(sorted(layers)))

    def _check_spram(self, n_weight_layers):
        names = self.spram
        if isinstance(names, str):
            names = (names,)
        if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"spram must be a list of memory names such as [\"W1\", \"A0\"], "
                              f"not {names!r}")
        allowed = ["A0", *(f"W{n}" for n in range(1, n_weight_layers + 1))]
        for name in names:
            if name not in allowed:
                raise ConfigError(f"spram: {name!r} is not a memory that single-port RAM can "
                                  f"hold; choose from {', '.join(allowed)}")
            if name == "A0":
                if "kernel" in self._geometry[0]:
                    raise ConfigError("spram: A0 of a convolution is read past the image in its "
                                      "guard rows of zeros, which single-port RAM does not "
                                      "start with; keep it in block RAM")
                continue
            layer = int(name[1:])
            if layer not in self.recompute_gradients:
                raise ConfigError(f"spram: {name} needs its layer's gradient recomputed "
                                  f"(recompute_gradients = [{layer}]): a stored gradient's "
                                  f"update reads and writes the weights every cycle")
            if max(self.array_rows, self.array_cols) > 1 or self.batch_size < SPRAM_MIN_BATCH:
                raise ConfigError(f"spram: {name} needs a 1x1 array and a batch of at least "
                                  f"{SPRAM_MIN_BATCH} "
                                  f"(the update writes a weight while the port is free), not "
                                  f"{self.array_rows}x{self.array_cols} and batch "
                                  f"{self.batch_size}")
            if self.bit_error_rate:
                raise ConfigError(f"spram: {name} cannot take memory faults (bit_error_rate): "
                                  f"their pass reads and writes every cycle")
        if len(set(names)) != len(names):
            raise ConfigError(f"spram names a memory twice: {list(names)}")
        object.__setattr__(self, "spram", tuple(names))

    def _check_apt(self):
        if not isinstance(self.apt, bool):
            raise ConfigError(f"apt must be true or false, not {self.apt!r}")
        t = self.apt_threshold
        if isinstance(t, str) and t.count("/") == 1:
            t = tuple(int(v) if v.strip().isdigit() else v for v in t.split("/"))
        if not isinstance(t, (tuple, list)) or len(t) != 2:
            raise ConfigError(f"apt_threshold must be NUM/DEN, e.g. 43/2048, not {t!r}")
        den = _check_int("apt_threshold denominator", t[1], 1, 2**32)
        object.__setattr__(self, "apt_threshold",
                           (_check_int("apt_threshold numerator", t[0], 0, den), den))
        _check_int("apt_step", self.apt_step, 1, 14)
        _check_int("apt_max", self.apt_max, max(b.e for b in self.bits), 16)

    # ----------------------------------------------------------------------------------------
    @cached_property
    def plan(self) -> tuple[LayerPlan, ...]:
        """Per-layer constants, computed once."""
        return self.error_plan([b.e for b in self.bits])

    def error_plan(self, widths) -> tuple[LayerPlan, ...]:
        """The per-layer constants with error widths ``kE_l = widths[l - 1]`` in place of
        ``bits.e`` (the widths APT mode reaches)."""
        plans = []
        n = len(self._geometry)
        for i, geo in enumerate(self._geometry):
            b = replace(self.bits[i], e=widths[i])
            in_bits = self.input_bits if i == 0 else self.bits[i - 1].a
            n_in, n_out, k = geo["n_in"], geo["n_out"], geo.get("kernel", 0)
            pool = geo.get("pool", 1)
            # A convolution's error reaches an input from k*k positions of every output channel;
            # its gradient sums over the batch and the output positions (one per pool window).
            fan_out, positions = n_out * max(k, 1)**2, 1
            if k:
                positions = geo["in_shape"][1] * geo["in_shape"][2] // pool**2
            alpha = _alpha_log2(n_in, b.w)
            out_shift = (b.w - 1) + (in_bits - 1) + alpha
            t_max = (1 << (b.w - 1)) - 1
            in_max = (1 << (in_bits - 1)) - 1
            e_max = (1 << (b.e - 1)) - 1
            w_max = ((1 << (b.g - 1)) - (1 << (b.g - b.w)) if self.weight_clip == "code"
                     else (1 << (b.g - 1)) - 1)
            l_min = 1.5 * 2.0 ** (1 - b.w)
            l_init = math.sqrt(3.0 / n_in)
            # The error entering this layer is kE wide, as is the error it sends back.
            plans.append(LayerPlan(
                index=i + 1, n_in=n_in, n_out=n_out, bits=b, in_bits=in_bits, last=i == n - 1,
                alpha_log2=alpha, out_shift=out_shift, qa_shift=out_shift - (b.a - 1),
                a_max=(1 << (b.a - 1)) - 1, e_max=e_max, t_max=t_max, t_shift=b.g - b.w,
                w_max=w_max, label=1 << out_shift, init_limit=max(l_min, l_init),
                acc_bits_forward=_signed_bits(n_in * t_max * in_max),
                acc_bits_backward=_signed_bits(fan_out * t_max * e_max),
                acc_bits_gradient=_signed_bits(self.batch_size * positions * e_max * in_max),
                kernel=k, pool=pool, in_shape=geo.get("in_shape", ()),
            ))
        return tuple(plans)

    @property
    def has_conv(self) -> bool:
        """The network has convolution (and max-pool) layers."""
        return any(p.conv for p in self.plan)

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """``(C, H, W)`` of an input image where the network starts with a convolution, else
        None (inputs are flat vectors)."""
        return self.plan[0].in_shape or None

    @property
    def bits_text(self) -> str:
        """The W-A-G-E widths for reports: one (``2-8-8-8``) when every layer has it, else each
        layer's from the first, comma-separated (``8-8-8-8,2-8-8-8``)."""
        names = [str(b) for b in self.bits]
        return names[0] if len(set(names)) == 1 else ",".join(names)

    @property
    def n_inputs(self) -> int:
        """Values per input sample."""
        return math.prod(self.input_shape) if self.has_conv else self.layers[0]

    def require_engine_layers(self, what: str) -> None:
        """Raise :class:`ConfigError` if the network has a layer the hardware engine does not
        build: a ``p x p`` max-pool needs memory slices of at least ``p`` lanes
        (``max(array_rows, array_cols) >= p``). ``what`` names the hardware entry point."""
        lanes = max(self.array_rows, self.array_cols)
        pooled = [p for p in self.plan if p.pool > lanes]
        if pooled:
            p = pooled[0]
            raise ConfigError(
                f"{what}: the {p.pool}x{p.pool} max-pool of layer {p.index} needs an array of at "
                f"least {p.pool} rows or columns (its memory slices hold whole windows), not "
                f"{self.array_rows}x{self.array_cols}; use a larger array or train the network "
                "with the golden model (intrain train --backend golden)")

    def lam_at(self, epoch: int) -> int:
        """``log2`` of the learning rate in force during ``epoch`` (0-based)."""
        lam = self.lr_schedule[0][1]
        for e, v in self.lr_schedule:
            if epoch >= e:
                lam = v
        return lam

    def draws_per_update(self, plan: LayerPlan) -> int:
        """Draws each random lane makes while updating one layer (the lane layout).

        Weight ``(o, i)`` of a layer (``o`` its output, ``i`` its input; for a convolution
        ``i`` counts the columns in the stored, channel-last order of
        :attr:`LayerPlan.stored_columns`) is rounded with the word of lane ``i % rng_lanes``.
        An update visits rows ``o = 0 .. n_out - 1`` in order and, in each row, chunks of
        ``rng_lanes`` consecutive columns; every lane draws once per chunk, also where the
        chunk runs past the row's end (the word is then unused). Layers are updated from the
        last to the first, and every update draws, even when its gradient is
        all zero.
        """
        if plan.index in self.recompute_gradients:
            return plan.n_out * -(-plan.n_in // self.array_cols)
        return plan.n_out * -(-plan.n_in // self.rng_lanes)

    def recompute_draws(self, plan: LayerPlan):
        """For a layer in :attr:`recompute_gradients`: ``(n_out, ceil(n_in / array_cols))``
        indices, into the layer's draws, of the draw that rounds each row slice ``(o, cb)``
        (columns ``cb * C .. cb * C + C - 1``, ``C = array_cols``).

        The update then follows the array's gradient job: tiles of ``R = array_rows`` rows by
        ``C`` columns, row blocks outer, column blocks inner, a tile's rows in order; each row of
        a tile that lies inside the matrix takes one draw of every lane, and lane ``c`` rounds
        its column ``c`` (lanes ``c >= C`` go unused)."""
        import numpy as np

        rows, cols = self.array_rows, self.array_cols
        n_cb = -(-plan.n_in // cols)
        index = np.empty((plan.n_out, n_cb), dtype=np.int64)
        d = 0
        for rb in range(0, plan.n_out, rows):
            n = min(rows, plan.n_out - rb)
            index[rb:rb + n, :] = d + np.arange(n_cb)[None, :] * n + np.arange(n)[:, None]
            d += n * n_cb
        return index

    @property
    def n_weights(self) -> int:
        return sum(p.n_in * p.n_out for p in self.plan)

    # ----------------------------------------------------------------------------------------
    def replace(self, **changes) -> Config:
        """A copy with some fields changed (derived seeds are derived again if ``seed`` or
        ``rng_lanes`` changes and ``rng_seeds`` is not given; with new ``layers`` and no
        ``bits``, widths that are the same for every layer stay so for the new layers)."""
        if "layers" in changes and "bits" not in changes and len(set(self.bits)) == 1:
            changes["bits"] = self.bits[:1]
        if ("seed" in changes or "rng_lanes" in changes) and "rng_seeds" not in changes:
            changes["rng_seeds"] = None
        if "seed" in changes and "fault_seed" not in changes:
            changes["fault_seed"] = None
        return replace(self, **changes)

    @property
    def min_train_batch(self) -> int:
        """The fewest samples of a training step on the hardware engine:
        :data:`SPRAM_MIN_BATCH` with weights in single-port RAM (:attr:`spram`), else 1."""
        return SPRAM_MIN_BATCH if any(n.startswith("W") for n in self.spram) else 1

    def with_recompute(self, layers) -> Config:
        """A copy with ``recompute_gradients = layers`` that keeps in :attr:`spram` only the
        input and the weights of layers still recomputed."""
        layers = tuple(layers)
        keep = tuple(n for n in self.spram if n == "A0" or int(n[1:]) in layers)
        return self.replace(recompute_gradients=layers, spram=keep)

    def to_dict(self) -> dict:
        """Plain data (ints, strings, lists) that :meth:`from_dict` turns back into this config
        (the fault fields only where they differ from their defaults)."""
        d = {
            "layers": list(self.layers),
            "bits": [str(b) for b in self.bits],
            "input_bits": self.input_bits,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "lr_schedule": [list(p) for p in self.lr_schedule],
            "weight_clip": self.weight_clip,
            "seed": self.seed,
            "rng_lanes": self.rng_lanes,
            "rng_seeds": list(self.rng_seeds),
            "lfsr": {"width": self.lfsr.width, "taps": list(self.lfsr.taps),
                     "draw_bits": self.lfsr.draw_bits},
            "acc_bits": self.acc_bits,
            "array_rows": self.array_rows,
            "array_cols": self.array_cols,
            "apt": self.apt,
            "apt_threshold": list(self.apt_threshold),
            "apt_step": self.apt_step,
            "apt_max": self.apt_max,
        }
        if self.bit_error_rate or self.fault_seed != self.seed ^ 1:
            d.update(bit_error_rate=self.bit_error_rate, fault_seed=self.fault_seed)
        if self.recompute_gradients:
            d["recompute_gradients"] = list(self.recompute_gradients)
        if self.spram:
            d["spram"] = list(self.spram)
        if not self.phase_counters:
            d["phase_counters"] = False
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        if isinstance(data, dict) and isinstance(data.get("config"), dict) and "history" in data:
            raise ConfigError("this is a training report (--report), not a configuration; its "
                              "'config' holds the run's settings (--save-config writes them)")
        data = _table("configuration", data, {f.name for f in fields(cls)})
        for key in ("layers", "rng_seeds", "recompute_gradients", "spram"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        if isinstance(data.get("bits"), list):
            data["bits"] = tuple(data["bits"])
        if isinstance(data.get("lr_schedule"), list):
            data["lr_schedule"] = tuple(tuple(p) if isinstance(p, list) else p
                                        for p in data["lr_schedule"])
        return cls(**data)

    def save(self, path) -> None:
        """Write to ``.json`` or ``.toml`` (by the file's suffix)."""
        path = Path(path)
        data = self.to_dict()
        if path.suffix not in (".toml", ".json"):
            raise ConfigError(f"config file {path} must end in .toml or .json")
        write_text(path, _to_toml(data) if path.suffix == ".toml"
                   else json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path) -> Config:
        """Read a ``.json`` or ``.toml`` file written by :meth:`save` (or by hand)."""
        path = Path(path)
        if path.suffix not in (".toml", ".json"):
            raise ConfigError(f"config file {path} must end in .toml or .json")
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file {path} is not text: byte 0x{raw[e.start]:02x} at "
                              f"offset {e.start} is not UTF-8") from None
        kind = path.suffix[1:].upper()
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except RecursionError:
            raise ConfigError(f"config file {path} is nested too deeply") from None
        except ValueError as e:  # a syntax error, or a number too long to convert
            raise ConfigError(f"config file {path} is not valid {kind}: "
                              f"{str(e).split(';')[0]}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None


def _table(name, value, known) -> dict:
    """``value``, a table (dict) whose keys are all in ``known``, as a new dict."""
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table of fields, not {type(value).__name__}")
    unknown = sorted(repr(k) for k in set(value) - known)
    if unknown:
        raise ConfigError(f"unknown {name} field(s) {', '.join(unknown)}; "
                          f"known fields: {', '.join(sorted(known))}")
    return dict(value)


def _parse_int_list(name, text):
    try:
        return tuple(int(v) for v in str(text).replace(" ", "").split(",") if v != "")
    except ValueError:
        raise ConfigError(f"{name} must be integers separated by commas, not {text!r}") from None


_SHAPE = re.compile(r"(\d+)x(\d+)x(\d+)", re.I)
_CONV = re.compile(r"(\d+)C(\d+)", re.I)
_POOL = re.compile(r"MP(\d+)", re.I)


def _layer_items(layers) -> tuple:
    """The items of a layer specification, in canonical form: an ``int`` per fully connected
    layer, ``"CxHxW"`` for the input shape, ``"NCk"`` for a convolution, ``"MPp"`` for a
    max-pool (the WAGE paper's notation)."""
    spec = layers
    if isinstance(layers, str):
        layers = [v for v in layers.replace(" ", "").split(",") if v != ""]
    if not isinstance(layers, (tuple, list)):
        raise ConfigError(f"layers must list the layers from input to output, not {layers!r}")
    items = []
    for i, item in enumerate(layers):
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if not isinstance(item, str):
            items.append(_check_int(f"layers[{i}]", item, 1, 65536))
            continue
        text = item.strip()
        for pattern, form in ((_SHAPE, "{}x{}x{}"), (_CONV, "{}C{}"), (_POOL, "MP{}")):
            m = pattern.fullmatch(text)
            if m:
                values = [_check_int(f"layers[{i}] ({text})", int(v), 1, 65536)
                          for v in m.groups()]
                items.append(form.format(*values))
                break
        else:
            raise ConfigError(
                "layers must be integers separated by commas, or the WAGE notation with the "
                f"input shape first (1x28x28,32C5,MP2,512,10), not {item!r} in {spec!r}")
    return tuple(items)


def _layer_geometry(items) -> list[dict]:
    """Per weight layer: ``n_in``, ``n_out`` and, for a convolution, ``kernel``, ``pool`` and
    ``in_shape``. Raises :class:`ConfigError` naming the item that does not fit."""
    if len(items) < 2:
        raise ConfigError(
            f"layers must list at least two sizes (input and output), not {items!r}")
    spec = ",".join(map(str, items))
    shape = tuple(map(int, items[0].split("x"))) if _SHAPE.fullmatch(str(items[0])) else None
    if isinstance(items[0], str) and shape is None:
        raise ConfigError(f"layers {spec}: the first item must be the input: a size (64) or a "
                          f"shape CxHxW (1x28x28), not {items[0]}")
    n = math.prod(shape) if shape else items[0]
    geometry = []
    for i, item in enumerate(items[1:], 1):
        where = f"layers {spec}: {item} (item {i + 1})"
        if isinstance(item, int):
            geometry.append({"n_in": n, "n_out": item})
            shape, n = None, item
        elif _SHAPE.fullmatch(item):
            raise ConfigError(f"{where}: the input shape must come first")
        elif _CONV.fullmatch(item):
            c_out, k = map(int, item.upper().split("C"))
            if shape is None:
                raise ConfigError(f"{where}: a convolution needs images: start with the input "
                                  "shape (1x28x28) and put every convolution before the fully "
                                  "connected layers")
            if k % 2 == 0:
                raise ConfigError(f"{where}: the kernel must be odd (zero padding (k - 1) / 2 "
                                  f"keeps the size), not {k}")
            geometry.append({"n_in": shape[0] * k * k, "n_out": c_out, "kernel": k,
                             "in_shape": shape})
            shape = (c_out, *shape[1:])
            n = math.prod(shape)
        else:
            p = int(item[2:])
            prev = geometry[-1] if geometry else {}
            if not prev.get("kernel") or not _CONV.fullmatch(str(items[i - 1])):
                raise ConfigError(f"{where}: a max-pool must follow a convolution")
            if p < 2:
                raise ConfigError(f"{where}: a max-pool must be at least 2x2")
            if shape[1] % p or shape[2] % p:
                raise ConfigError(f"{where}: a {p}x{p} pool does not divide the {shape[1]}x"
                                  f"{shape[2]} output of {items[i - 1]} into windows")
            prev["pool"] = p
            shape = (shape[0], shape[1] // p, shape[2] // p)
            n = math.prod(shape)
    if not isinstance(items[-1], int):
        raise ConfigError(f"layers {spec}: the last layer must be fully connected (one output "
                          f"per class), not {items[-1]}")
    return geometry


def _parse_schedule(text):
    """``"0:0,20:-1"`` (first_epoch:lam) or a single ``"lam"``."""
    text = str(text).replace(" ", "")
    try:
        if ":" not in text:
            return ((0, int(text)),)
        return tuple((int(a), int(b)) for a, b in (p.split(":") for p in text.split(",")))
    except ValueError:
        raise ConfigError(
            f"lr schedule must look like 0:0,20:-1 (first_epoch:log2_lr), not {text!r}") from None


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _to_toml(data: dict) -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"
