"""xarray DataArray / Dataset in, the same kind out.

``xr.apply_ufunc`` does the bookkeeping: dims, coords, name and (with
``keep_attrs=True``) attrs are kept, every data variable of a Dataset is
computed, and ``dask="allowed"`` hands dask-backed data to the dask adapter
as it is, so a dask-backed object stays lazy.  alpha and the backend name
are checked at call time.
"""

from __future__ import annotations

import xarray as xr

from .. import api, registry



def dispatch(op, arrays, alpha, out, backend):
    if out is not None:
        raise TypeError("out= is not supported with xarray objects; use the returned object")
    alpha = api.check_alpha(alpha)
    name = registry.requested_name(backend)
    return xr.apply_ufunc(
        api.BY_OP[op], *arrays, alpha,
        kwargs={"backend": name},
        dask="allowed",
        keep_attrs=True,
    )
