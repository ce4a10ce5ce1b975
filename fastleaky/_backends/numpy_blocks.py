"""The ``numpy`` backend: the reference (``fastleaky.reference``) block by block.

Block by block so that a call with ``out=`` allocates no temporaries
proportional to the array (the reference's whole-array ``np.where`` makes a
mask, ``x * a`` and its result), only fixed-size scratch.  Each block is
computed before it is written, so ``out`` may be an input itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from ..ops import Op

parallel = False
BLOCK = 1 << 14


def available() -> tuple[bool, str]:
    return True, f"numpy {np.__version__}"


def native_dtypes() -> frozenset[type[np.generic]]:
    return frozenset(np.sctypeDict[t] for t in ("float16", "float32", "float64", "longdouble"))


def run(op: Op, inputs: Sequence[NDArray[Any]], a: np.generic, out: NDArray[Any],
        nthreads: int) -> None:
    for lo in range(0, out.size, BLOCK):
        block = slice(lo, min(lo + BLOCK, out.size))
        out[block] = op.reference(*(x[block] for x in inputs), a)
