"""Training curves: loss and accuracy per epoch, integer and float32 side by side."""

from __future__ import annotations

from pathlib import Path

from intrain.fileio import replacing

__all__ = ["plot_history"]


def plot_history(report, path) -> Path:
    """Draw ``report.history`` into ``path`` (PNG, PDF or SVG, by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = report.history
    epochs = [s.epoch + 1 for s in h]
    has_float = h and h[0].float_test_accuracy is not None
    widths = report.extra.get("apt_widths")
    fig, axes = plt.subplots(1, 3 if widths else 2, figsize=(16 if widths else 11, 4),
                             constrained_layout=True)
    ax = axes[0]
    ax.plot(epochs, [s.train_loss for s in h], color="C0", label="integer: SSE / sample")
    ax.set_xlabel("epoch")
    ax.set_ylabel("integer loss (SSE per sample)", color="C0")
    ax.set_yscale("log")
    if has_float:
        ax2 = ax.twinx()
        ax2.plot(epochs, [s.float_train_loss for s in h], color="C1",
                 label="float32: cross-entropy / sample")
        ax2.set_ylabel("float32 loss (cross-entropy per sample)", color="C1")
        ax2.set_yscale("log")
    ax.set_title("training loss")
    ax = axes[1]
    bits = report.config.bits_text
    ax.plot(epochs, [100 * s.test_accuracy for s in h], color="C0", label=f"integer {bits} test")
    ax.plot(epochs, [100 * s.train_accuracy for s in h], color="C0", ls="--",
            label=f"integer {bits} train")
    if has_float:
        ax.plot(epochs, [100 * s.float_test_accuracy for s in h], color="C1",
                label="float32 test")
        ax.plot(epochs, [100 * s.float_train_accuracy for s in h], color="C1", ls="--",
                label="float32 train")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    lo = min(100 * min(s.test_accuracy for s in h[len(h) // 4:]), 90)
    ax.set_ylim(lo, 100.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{report.dataset}: network {'-'.join(map(str, report.config.layers))}")
    if widths:
        _plot_widths(axes[2], report.config, widths)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(path) as f:
            fig.savefig(f, format=path.suffix[1:], dpi=110)
    finally:
        plt.close(fig)
    return path


def _plot_widths(ax, config, widths) -> None:
    """APT mode: each layer's error width ``kE_l`` at the start and after every epoch."""
    start = [b.e for b in config.bits]
    for i in range(len(start)):
        ax.step(range(len(widths) + 1), [start[i]] + [w[i] for w in widths], where="post",
                label=f"layer {i + 1}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error width kE (bits)")
    ax.set_ylim(0, config.apt_max + 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("APT mode: error widths")
