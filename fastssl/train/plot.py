"""The pretraining report's figure: the loss per step and the kNN accuracy measured along the way.

:func:`training_figure` draws two panels sharing the step axis — the loss (each step thin, its moving
average thick) and, when given, the kNN accuracy of checkpoints against the random-init network's and
chance — and writes them as PNG and SVG with matplotlib (``pip install 'fastssl-engine[train]'``). A run
with fewer than :data:`MIN_STEPS` finite losses has no curve to show: :func:`why_no_figure` says why,
and :func:`training_figure` refuses it with that sentence.

Example:
    >>> import tempfile, os
    >>> stem = os.path.join(tempfile.mkdtemp(), "report")
    >>> paths = training_figure([3.0, 2.5, 2.2, 2.0], stem, knn=[(2, 40.0), (4, 55.0)], random_init_knn=20.0,
    ...                         chance=100 / 6, title="demo")
    >>> [os.path.basename(p) for p in paths]
    ['report.png', 'report.svg']
"""

from __future__ import annotations

import math

MIN_STEPS = 2  #: finite losses a figure needs (one point is no curve)


def why_no_figure(losses: list[float]) -> str | None:
    """None when ``losses`` can be plotted, else the reason as a sentence fragment."""
    finite = sum(1 for v in losses if math.isfinite(v))
    if finite < MIN_STEPS:
        return f"the run made {len(losses)} step(s) with {finite} finite loss(es); a curve needs at least {MIN_STEPS}"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'fastssl-engine[train]')"
    return None


def moving_average(values: list[float], window: int) -> list[float]:
    """The mean of the last ``window`` finite values at each position (NaN until one is seen)."""
    out, kept = [], []
    for v in values:
        if math.isfinite(v):
            kept.append(v)
            kept = kept[-window:]
        out.append(sum(kept) / len(kept) if kept else float("nan"))
    return out


def training_figure(losses: list[float], stem: str, *, knn: list[tuple[int, float]] | None = None,
                    random_init_knn: float | None = None, chance: float | None = None,
                    title: str = "pretraining") -> list[str]:
    """Writes ``<stem>.png`` and ``<stem>.svg``; returns their paths.

    Args:
        losses: the loss of steps 1 .. len(losses) (NaN/inf for skipped steps are left out of the curve).
        knn: (step, kNN top-1 accuracy in %) measured during training; step 0 is the random initialisation.
        random_init_knn: the same network's kNN accuracy (%) at random initialisation: a dashed line.
        chance: 100 / classes (%): a dotted line.
    """
    reason = why_no_figure(losses)
    if reason is not None:
        raise ValueError(f"no figure: {reason}")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    steps = list(range(1, len(losses) + 1))
    rows = 2 if knn else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7.5, 3.2 * rows), sharex=True, squeeze=False)
    loss_ax = axes[0][0]
    loss_ax.plot(steps, losses, color="#9ab", linewidth=0.8, label="loss of each step")
    window = max(1, len(losses) // 20)
    loss_ax.plot(steps, moving_average(losses, window), color="#c33", linewidth=2.2,
                 label=f"moving average ({window} steps)")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title(title)
    loss_ax.grid(True, alpha=0.3)
    loss_ax.legend(loc="upper right", fontsize=8)
    if knn:
        ax = axes[1][0]
        xs, ys = zip(*sorted(knn))
        ax.plot(xs, ys, marker="o", color="#2a6", linewidth=2, label="pretrained (held-out images)")
        if random_init_knn is not None:
            ax.axhline(random_init_knn, color="#555", linestyle="--", linewidth=1.2, label="random init")
        if chance is not None:
            ax.axhline(chance, color="#999", linestyle=":", linewidth=1.2, label="chance")
        ax.set_ylabel("kNN accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[-1][0].set_xlabel("training step")
    axes[-1][0].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[-1][0].set_xlim(0, len(losses))
    fig.tight_layout()
    paths = [f"{stem}.png", f"{stem}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths
