"""dask arrays in, lazy dask arrays out (one task per chunk, no compute).

Everything that can be checked without the data is checked at call time:
alpha, the result dtype (bool/int give float64; complex, object ... raise),
matching shapes (unknown chunk sizes are matched block by block, as dask's
own operators do) and the backend name.  The tasks run ``inner`` (the
package's ``api.compute``) on each block with the backend name resolved here
(a ``use_backend`` context on the client has no meaning on a worker), so a
block of any kind fastleaky accepts (NumPy, CuPy) is computed where it lies.

On a ``distributed`` cluster each worker process imports fastleaky once.
With ``backend="auto"`` the blocks run on the ahead-of-time compiled Cython
loops, so workers never JIT anything; the Numba backends load their loops
from Numba's on-disk cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dask.array as da
from dask.array.utils import meta_from_array

from .. import boundary, ops, registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from . import Inner

# (dask.array's functions carry no annotations: the calls to them below are
# marked ``no-untyped-call`` for mypy --strict)


def _block(*blocks: Any, op: str, alpha: object, backend: str, inner: Inner) -> Any:
    return inner(ops.BY_NAME[op], blocks, alpha, None, backend)


def compute(op: ops.Op, arrays: Sequence[object], alpha: object, out: object, backend: str,
            inner: Inner) -> da.Array:
    boundary.no_out(boundary.DASK, out)
    lazy: list[da.Array] = [a if isinstance(a, da.Array)
                            else da.asarray(a)  # type: ignore[no-untyped-call]
                            for a in arrays]
    # alpha is checked (overflow in the result dtype too) now, not at compute;
    # the blocks get it as given, so that they take the plain-call path
    dtype, _, _ = boundary.check_inputs([a.dtype for a in lazy], [a.shape for a in lazy], alpha)
    name = registry.requested_name(backend)
    x = lazy[-1]
    index = tuple(range(x.ndim))
    # blockwise (not map_blocks) so that inputs with different chunks, or a
    # NumPy grad_output, are rechunked to match
    result: da.Array = da.blockwise(  # type: ignore[no-untyped-call]
        _block, index, *(arg for a in lazy for arg in (a, index)),
        op=op.name, alpha=alpha, backend=name, inner=inner,
        dtype=dtype, meta=meta_from_array(x, dtype=dtype),  # type: ignore[no-untyped-call]
        token=op.public, align_arrays=True,
    )
    return result
