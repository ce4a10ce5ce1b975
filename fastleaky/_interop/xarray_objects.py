"""xarray DataArray / Dataset / Variable in, the same kind out.

``xr.apply_ufunc`` does the bookkeeping: dims, coords, name and (with
``keep_attrs=True``) attrs are kept, every data variable of a Dataset is
computed, and ``dask="allowed"`` hands dask-backed data to ``inner`` as it
is, so a dask-backed object stays lazy.  alpha and the backend name are
checked at call time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

from .. import boundary, registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..ops import Op
    from . import Inner


def compute(op: Op, arrays: Sequence[object], alpha: object, out: object, backend: str,
            inner: Inner) -> Any:
    boundary.no_out(boundary.XARRAY, out)
    alpha = boundary.check_alpha(alpha)
    name = registry.requested_name(backend)

    def on_data(*data: Any) -> Any:
        return inner(op, data, alpha, None, name)

    return xr.apply_ufunc(on_data, *arrays, dask="allowed", keep_attrs=True)
