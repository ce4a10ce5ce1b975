"""Adapters for the non-NumPy kinds of array (``boundary.kind_of`` names them).

Each module exposes ``compute(op, arrays, alpha, out, backend, inner)``:
``op`` an ``ops.Op``, ``arrays`` the inputs in the public function's order,
``inner`` the package's own ``api.compute``, for data of another kind that
an object holds (the NumPy or CuPy blocks of a dask array, the data of an
xarray object).  Adapters check their inputs with ``fastleaky.boundary``
and never import ``fastleaky.api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from ..ops import Op

    #: ``inner``: the package's ``api.compute``, called as
    #: ``inner(op, arrays, alpha, out, backend)``; it returns the result in
    #: the kind of the arrays it is given.
    Inner = Callable[[Op, Sequence[Any], Any, Any, str], Any]
