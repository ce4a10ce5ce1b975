"""dask arrays in, lazy dask arrays out (one task per chunk, no compute).

Everything that can be checked without the data is checked here, at call
time: alpha, the result dtype (bool/int give float64; complex, object ...
raise), matching shapes and the backend name.  The tasks call the public
fastleaky functions on each block, with the backend name resolved here (a
``use_backend`` context on the client has no meaning on a worker), so a
block of any kind fastleaky accepts (NumPy, CuPy) is computed where it lies.

On a ``distributed`` cluster each worker process imports fastleaky once.
With ``backend="auto"`` the blocks run on the ahead-of-time compiled Cython
loops, so workers never JIT anything; the Numba backends load their ufuncs
from Numba's on-disk cache (written by the first process on the machine
that compiled them), so workers do not each recompile from cold.
"""

from __future__ import annotations

import dask.array as da
from dask.array.utils import meta_from_array

from .. import api, registry

def _block(*blocks, op, alpha, backend):
    return api.BY_OP[op](*blocks, alpha, backend=backend)


def dispatch(op, arrays, alpha, out, backend):
    if out is not None:
        raise TypeError(
            "out= is not supported with dask arrays (they are immutable); "
            "use the returned array, or dask.array.store it"
        )
    arrays = [a if isinstance(a, da.Array) else da.asarray(a) for a in arrays]
    dtype = api.result_dtype([a.dtype for a in arrays])
    x = arrays[-1]
    if len(arrays) == 2 and arrays[0].shape != x.shape:
        raise ValueError(
            f"grad_output has shape {arrays[0].shape} but x has shape {x.shape}; they must match"
        )
    alpha = api.check_alpha(alpha)
    api.cast_alpha(alpha, dtype)  # overflow in the result dtype raises now, not at compute
    name = registry.requested_name(backend)
    index = tuple(range(x.ndim))
    # blockwise (not map_blocks) so that inputs with different chunks, or a
    # NumPy grad_output, are rechunked to match
    return da.blockwise(
        _block, index, *(arg for a in arrays for arg in (a, index)),
        op=op, alpha=alpha, backend=name,
        dtype=dtype, meta=meta_from_array(x, dtype=dtype), token=api.BY_OP[op].__name__,
        align_arrays=True,
    )
