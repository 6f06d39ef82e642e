"""Evaluation plots as PNG files (matplotlib, Agg backend), written atomically."""

from __future__ import annotations

import io
from pathlib import Path

from amchw.fileio import atomic_write


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'amchw[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plt, path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def accuracy_vs_snr(results: list[dict], path) -> Path:
    """One line per model and kind, one colour per model: the float model a solid line with
    round markers, the integer IR a dashed line with crosses, so the two stay apart where
    they coincide (`results` are evaluate_checkpoint dicts; their `label` or model name)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for i, r in enumerate(results):
        c = f"C{i % 10}"
        label = r.get("label", r["model"])
        for kind, style, mark, size, width in (("float", "-", "o", 5, 2.0),
                                               ("int", "--", "x", 6, 1.2)):
            acc = r[f"{kind}_by_snr"]
            if not acc:          # a float-only training has no integer curve
                continue
            snrs = sorted(acc, key=int)
            ax.plot([int(s) for s in snrs], [100 * acc[s] for s in snrs], style, color=c,
                    marker=mark, ms=size, lw=width, mfc="none" if kind == "float" else c,
                    label=f"{label} ({'float, solid' if kind == 'float' else 'integer, dashed'})")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    # beside the axes, not over the curves (a page's plot carries a dozen lines)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_title("accuracy vs SNR")
    return _save(fig, plt, path)


def class_support(matrix) -> str:
    """How many frames the rows of a confusion matrix rest on: "N frames per class", or the
    fewest to the most, or "no frames" (classes without frames left out)."""
    import numpy as np

    rows = np.asarray(matrix, np.int64).sum(axis=1)
    n = rows[rows > 0]
    if not n.size:
        return "no frames"
    if n.min() == n.max():
        return f"{int(n.min()):,} frame{'' if n.min() == 1 else 's'} per class"
    return f"{int(n.min()):,}-{int(n.max()):,} frames per class"


def confusion_heatmap(matrix, classes, path, title: str = "") -> Path:
    """Row-normalised confusion matrix (true class down, predicted across) as a heat map in
    percent of each true class's frames, with each cell's percentage written in it; the title
    adds how many frames the rows rest on (fewest to most), so a small sample shows."""
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix, np.float64)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    k = len(classes)
    size = max(4.5, 0.38 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(100 * frac, vmin=0, vmax=100, cmap="Blues")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(classes, rotation=70, ha="right", fontsize=7)
    ax.set_yticklabels(classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if frac[i, j] >= 0.005:
                ax.text(j, i, f"{100 * frac[i, j]:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if frac[i, j] > 0.5 else "black")
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("% of the true class's frames", fontsize=8)
    support = class_support(m)
    ax.set_title(f"{title}\n{support}" if title else support, fontsize=9)
    return _save(fig, plt, path)
