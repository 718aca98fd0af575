"""A loss-curve plot as a standalone SVG file (no plotting library needed).

Example:
    >>> import tempfile, os
    >>> path = loss_curve_svg([3.0, 2.0, 1.5, 1.2], os.path.join(tempfile.mkdtemp(), "loss.svg"), title="demo")
    >>> open(path).read().startswith("<svg")
    True
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT, MARGIN = 640, 360, 56


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def loss_curve_svg(losses: list[float], path: str, *, title: str = "training loss", smooth: int | None = None) -> str:
    """Writes the per-step losses (thin) and their moving average (thick) to ``path``; returns ``path``."""
    finite = [v for v in losses if math.isfinite(v)]
    if not finite:
        raise ValueError("losses holds no finite value to plot")
    window = smooth or max(1, len(losses) // 20)
    lo, hi = min(finite), max(finite)
    hi = hi if hi > lo else lo + 1.0
    n = max(1, len(losses) - 1)

    def point(i: int, v: float) -> str:
        x = MARGIN + (WIDTH - 2 * MARGIN) * i / n
        y = HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    raw = " ".join(point(i, v) for i, v in enumerate(losses) if math.isfinite(v))
    avg = " ".join(point(i, v) for i, v in enumerate(_smooth([v if math.isfinite(v) else hi for v in losses], window)))
    ticks = []
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * k / 4
        ticks.append(f'<line x1="{MARGIN - 4}" y1="{y:.1f}" x2="{WIDTH - MARGIN}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{MARGIN - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{v:.3g}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif">'
           f'<rect width="100%" height="100%" fill="white"/>{"".join(ticks)}'
           f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>'
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 14}" text-anchor="middle" font-size="12">step (1 … {len(losses)})</text>'
           f'<polyline points="{raw}" fill="none" stroke="#9ab" stroke-width="1"/>'
           f'<polyline points="{avg}" fill="none" stroke="#c33" stroke-width="2.5"/></svg>\n')
    with open(path, "w") as f:
        f.write(svg)
    return path
