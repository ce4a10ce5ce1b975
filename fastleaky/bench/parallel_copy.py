"""A copy on all cores, compiled by Numba: the multi-threaded copy limit.

The report's limit must not depend on PyTorch being installed, and on more
than one core a single-thread ``np.copyto`` is not the limit of a
multi-threaded kernel.  This is the plainest parallel loop there is: each
element's bits moved, the iterations split over Numba's threads (the
threading layer the ``numba-parallel`` backend uses).  Moving unsigned
integers of the item's width copies any float dtype, float16 and NaN
payloads included, bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from .._backends.numba_loops import njit_with_disk_cache

if TYPE_CHECKING:
    from numpy.typing import NDArray


def _copy_bits(x: NDArray[np.unsignedinteger[Any]], out: NDArray[np.unsignedinteger[Any]]) -> None:
    for i in numba.prange(x.size):
        out[i] = x[i]


_copy = njit_with_disk_cache(_copy_bits, parallel=True, nogil=True)


def copy(x: NDArray[np.floating[Any]], out: NDArray[np.floating[Any]]) -> None:
    """Copy the contiguous 1-D array ``x`` into ``out`` on all of Numba's threads.

    Parameters
    ----------
    x, out : numpy.ndarray
        Contiguous 1-D arrays of the same shape and float dtype.
    """
    bits = np.dtype(f"u{x.dtype.itemsize}")
    _copy(x.view(bits), out.view(bits))
