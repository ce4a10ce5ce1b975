"""Adapters for the non-NumPy kinds of array (``boundary.kind_of`` names them).

Each module exposes ``compute(op, arrays, alpha, out, backend, inner)``:
``op`` an ``ops.Op``, ``arrays`` the inputs in the public function's order,
``inner`` the package's own ``api.compute``, for data of another kind that
an object holds (the NumPy or CuPy blocks of a dask array, the data of an
xarray object).  Adapters check their inputs with ``fastleaky.boundary``
and never import ``fastleaky.api``.
"""
