"""``fastleaky plot``: LeakyReLU and its derivative, the picture every tutorial draws."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .report import StrPath

FORMATS = (".png", ".svg")


def plot_function(path: StrPath, alphas: Sequence[float] = (0.01,), xmin: float = -2.0,
                  xmax: float = 2.0) -> Path:
    """Draw f(x) and f'(x) for each alpha over [xmin, xmax] to ``path`` (.png or .svg).

    Computed with ``fastleaky.leaky_relu`` and ``fastleaky.leaky_relu_grad``.
    The derivative jumps at 0: drawn as two pieces, with f'(0) = alpha (as
    PyTorch defines it) marked by a filled dot and the limit 1 by an open one.
    """
    import fastleaky

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot write {path.name!r}: the file name must end in .png or .svg")
    if not xmin < xmax:
        raise ValueError(f"--xmin ({xmin}) must be less than --xmax ({xmax})")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax_f, ax_g = fig.subplots(1, 2)
    x = np.linspace(xmin, xmax, 801)
    neg, pos = x[x <= 0], x[x > 0]
    # x > 0 is the same for every alpha: drawn once, in black when alphas differ
    shared = "black" if len(alphas) > 1 else "C0"
    for i, alpha in enumerate(alphas):
        color = f"C{i % 10}"
        label = f"alpha = {alpha:g}"
        if len(neg):
            ax_f.plot(neg, fastleaky.leaky_relu(neg, alpha), color=color, lw=2, label=label)
            ax_g.plot(neg, fastleaky.leaky_relu_grad(neg, alpha), color=color, lw=2, label=label)
        if xmin <= 0 <= xmax:
            ax_g.plot([0], [alpha], "o", color=color, ms=5)
    if len(pos):
        ax_f.plot(np.r_[0.0, pos] if len(neg) else pos,
                  fastleaky.leaky_relu(np.r_[0.0, pos] if len(neg) else pos), color=shared,
                  lw=2, label="x > 0 (every alpha)" if len(alphas) > 1 else None)
        ax_g.plot(pos, fastleaky.leaky_relu_grad(pos), color=shared, lw=2)
    if xmin <= 0 <= xmax:
        ax_g.plot([0], [1], "o", mfc="white", mec=shared, ms=5)
    ax_f.set_title("LeakyReLU  f(x) = x if x > 0 else alpha·x")
    ax_g.set_title("derivative  f'(x) = 1 if x > 0 else alpha")
    for ax in (ax_f, ax_g):
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlim(xmin, xmax)
        ax.set_xlabel("x")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=9)
    ax_f.set_ylabel("f(x)")
    ax_g.set_ylabel("f'(x)")
    fig.savefig(path, dpi=120)  # into an existing folder: a typo does not make folders
    return path
