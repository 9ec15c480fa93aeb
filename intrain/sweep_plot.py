"""Plots of a sweep's table (:mod:`intrain.sweep_run`): Fmax and LUTs against MACs per board,
test accuracy against the bit widths, effective GOPS against LUTs with the Pareto front."""

from __future__ import annotations

from pathlib import Path

from intrain.sweep import pareto

__all__ = ["plot_sweep"]


def _empty(ax, title, what):
    ax.set_title(title)
    ax.text(0.5, 0.5, f"no {what} in this sweep", ha="center", va="center",
            transform=ax.transAxes, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])


def _boards(rows):
    return sorted({r["board"] for r in rows})


def _scatter_per_board(ax, rows, key, ylabel, title):
    """``key`` against MACs, one colour per board; timing failures hollow."""
    if not rows:
        return _empty(ax, title, "builds")
    for n, board in enumerate(_boards(rows)):
        mine = [r for r in rows if r["board"] == board]
        for met, face in ((True, f"C{n}"), (False, "none")):
            pts = [r for r in mine if bool(r.get("timing_met")) == met]
            if pts:
                ax.scatter([r["macs"] for r in pts], [r[key] for r in pts], facecolors=face,
                           edgecolors=f"C{n}", label=board if met or len(pts) == len(mine)
                           else None)
        if key == "lut" and mine[0].get("lut_available"):
            ax.axhline(mine[0]["lut_available"], color=f"C{n}", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    macs = sorted({r["macs"] for r in rows})
    ax.set_xticks(macs, [str(m) for m in macs])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("MACs (array rows x columns)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title="hollow: timing not met" if key == "fmax_mhz" else None,
              title_fontsize="small")


def _bits_order(label):
    return tuple(int(x) for part in label.split(",") for x in part.split("-"))


def _accuracy(ax, rows):
    title = "test accuracy vs bit widths (W-A-G-E)"
    if not rows:
        return _empty(ax, title, "training runs")
    labels = sorted({r["bits"] for r in rows}, key=_bits_order)
    nets = sorted({r["layers"] for r in rows})
    width = 0.6 / max(1, len(nets))
    for n, net in enumerate(nets):
        mine = [r for r in rows if r["layers"] == net]
        x = [labels.index(r["bits"]) + (n - (len(nets) - 1) / 2) * width for r in mine]
        ax.scatter(x, [100 * r["test_accuracy"] for r in mine], color=f"C{n}",
                   label=f"integer {net}")
        fl = [(xi, r["float_test_accuracy"]) for xi, r in zip(x, mine)
              if r.get("float_test_accuracy") is not None]
        if fl:
            ax.scatter([a for a, _ in fl], [100 * b for _, b in fl], marker="_", s=200,
                       color=f"C{n}", alpha=0.6, label=f"float32 {net}")
    ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _gops(ax, rows):
    title = "effective GOPS vs LUTs (training step at Fmax)"
    rows = [r for r in rows if r.get("effective_gops") is not None and r.get("lut") is not None]
    if not rows:
        return _empty(ax, title, "builds")
    for n, board in enumerate(_boards(rows)):
        mine = [r for r in rows if r["board"] == board]
        ax.scatter([r["lut"] for r in mine], [r["effective_gops"] for r in mine],
                   color=f"C{n}", label=board)
    front = sorted((r["lut"], r["effective_gops"]) for r in rows
                   if r["point"] in pareto(rows))
    ax.step([a for a, _ in front], [b for _, b in front], where="post", color="k", ls="--",
            lw=1)
    ax.scatter([a for a, _ in front], [b for _, b in front], s=160, facecolors="none",
               edgecolors="k", label="Pareto front")
    ax.set_xlabel("LUTs used")
    ax.set_ylabel("effective GOPS")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def plot_sweep(rows: list[dict], path) -> Path:
    """Draw the four plots of a sweep's ``rows`` into ``path`` (PNG, PDF or SVG, by
    suffix); a plot without data says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    built = [r for r in rows if r.get("fmax_mhz") is not None]
    trained = [r for r in rows if r.get("test_accuracy") is not None]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), constrained_layout=True)
    _scatter_per_board(axes[0][0], built, "fmax_mhz", "Fmax (MHz)", "Fmax vs MACs per board")
    _scatter_per_board(axes[0][1], [r for r in built if r.get("lut") is not None], "lut",
                       "LUTs used (dotted: available)", "LUTs vs MACs per board")
    _accuracy(axes[1][0], trained)
    _gops(axes[1][1], built)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
