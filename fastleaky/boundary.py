"""The boundary: every input kind validated and normalised in one place.

Every path -- host arrays, device arrays, dask, xarray, torch -- checks its
inputs with the functions here, so each check and each message exists once.
This module is a leaf: it imports NumPy and ``fastleaky.ops`` only, never
an adapter or a backend, so nothing that imports it can route back into it.

What the kernels are handed is decided here too: flat, 1-D, contiguous,
native-order arrays of exactly ``numpy.ndarray`` (never a subclass, whose
``reshape`` may keep it 2-D, as ``np.matrix`` does).
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import SupportsFloat, TypeVar

    from numpy.typing import NDArray

    #: alpha once checked: a finite real scalar, as the caller gave it
    #: (``check_alpha``), before it is cast to the result dtype.
    RealScalar = float | numbers.Real | np.integer[Any] | np.floating[Any] | np.bool_
    _Scalar = TypeVar("_Scalar", bound=np.generic)
    #: A mask as NumPy keeps it: ``np.ma.nomask`` (a False scalar) or an array.
    _Mask = NDArray[np.bool_] | np.bool_

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
NATIVE_FLOATS = {_F16: np.float16, _F32: np.float32, _F64: np.float64}


# ---------------------------------------------------------------- scalars

def check_alpha(alpha: object) -> RealScalar:
    """Validate alpha (a finite real scalar); returns it unchanged or as a scalar.

    TypeError for anything that is not a real number (complex, str, an array
    of several elements, a timedelta or datetime); ValueError for NaN or inf.
    """
    if type(alpha) is float:
        value = alpha
    elif isinstance(alpha, (np.timedelta64, np.datetime64)):
        raise TypeError(f"alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
    elif isinstance(alpha, (numbers.Real, np.integer, np.floating, np.bool_)):
        value = _as_float(alpha)
    elif isinstance(alpha, np.ndarray) or hasattr(alpha, "__array__"):
        if np.ma.is_masked(alpha):
            raise TypeError("alpha must be a real number, got a masked value")
        arr = np.asarray(alpha)
        if arr.size != 1:
            raise TypeError(f"alpha must be a real scalar, got an array of shape {arr.shape}")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"alpha must be a real number, got dtype {arr.dtype}")
        # NumPy's stubs type ``[()]`` as an array; on a 0-d array it is a
        # scalar, and one of kind b/i/u/f (checked above)
        scalar: RealScalar = arr.reshape(())[()]  # type: ignore[assignment]
        alpha = scalar
        value = _as_float(alpha)
    else:
        raise TypeError(f"alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
    if not math.isfinite(value):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return alpha


def _as_float(alpha: SupportsFloat) -> float:
    try:
        return float(alpha)
    except OverflowError:  # a Python int beyond any float
        raise ValueError(f"alpha must be finite, got {alpha!r}") from None


_CAST_SAFE: dict[np.dtype[Any], float] = {
    dt: float(np.finfo(dt).max) / 2 for dt in (_F16, _F32, _F64)
}


def cast_alpha(alpha: RealScalar, dtype: np.dtype[np.floating[Any]]) -> np.floating[Any]:
    """alpha as a scalar of ``dtype``; ValueError if it overflows there."""
    safe = _CAST_SAFE.get(dtype)
    if safe is not None and type(alpha) is float and -safe <= alpha <= safe:
        # (a dtype's scalar type, called, is Any in NumPy's stubs: the
        # annotated name keeps the result's type)
        a: np.floating[Any] = dtype.type(alpha)  # cannot overflow: no errstate needed
        return a
    with np.errstate(over="ignore"):
        a = dtype.type(alpha)
    if not np.isfinite(a):
        raise ValueError(f"alpha={alpha!r} is not finite in {dtype.name}")
    return a


# ---------------------------------------------------------------- dtypes, shapes, out

def result_dtype(dtypes: Sequence[np.dtype[Any]]) -> np.dtype[np.floating[Any]]:
    """The dtype results are computed in: floating kept, bool/int -> float64."""
    for d in dtypes:
        # each input on its own: promoting first would name the wrong dtype
        # (str with float32 gives <U32) or raise NumPy's promotion error
        if d.kind not in "biuf":
            raise TypeError(
                f"fastleaky computes on real numbers; got dtype {d} "
                "(complex, object, string and datetime input are not supported)"
            )
    dt = dtypes[0] if len(dtypes) == 1 else np.result_type(*dtypes)
    if dt.kind == "f":
        return dt if dt.isnative else dt.newbyteorder("=")
    return _F64 if len(dtypes) == 1 else np.result_type(_F64, *dtypes)


def check_same_shape(shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The common shape of ``(grad_output, x)`` (or of ``(x,)``); ValueError if
    they differ.  Unknown (NaN) dask chunk sizes match anything: they are
    checked block by block when computed."""
    shape = tuple(shapes[-1])
    if len(shapes) == 2:
        other = tuple(shapes[0])
        if len(other) != len(shape) or any(
            a != b and not (_unknown(a) or _unknown(b)) for a, b in zip(other, shape)
        ):
            raise ValueError(
                f"grad_output has shape {other} but x has shape {shape}; they must match"
            )
    return shape


def _unknown(n: object) -> bool:
    return isinstance(n, float) and math.isnan(n)


def check_inputs(
    dtypes: Sequence[np.dtype[Any]], shapes: Sequence[Sequence[int]], alpha: object
) -> tuple[np.dtype[np.floating[Any]], tuple[int, ...], np.floating[Any]]:
    """The checks every path makes of its inputs, in one order (so errors do
    not depend on the path): ``(result dtype, shape, alpha in that dtype)``."""
    dtype = result_dtype(dtypes)
    shape = check_same_shape(shapes)
    return dtype, shape, cast_alpha(check_alpha(alpha), dtype)


def check_out_fields(out_shape: Sequence[int], out_dtype: np.dtype[Any], readonly: bool,
                     shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
    """Raise before any write if an output (of any array library, described by
    its fields) cannot receive the result."""
    if tuple(out_shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out_shape)}, the result has shape {shape}")
    if out_dtype != dtype:
        raise TypeError(f"out has dtype {out_dtype}, the result has dtype {dtype}")
    if readonly:
        raise ValueError("out is read-only")


def check_host_out(out: object, shape: tuple[int, ...],
                   dtype: np.dtype[Any]) -> NDArray[Any]:
    """``out`` for a host call, checked; returns its base-class view (the
    memory the kernels write, whatever subclass the caller passed)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    check_out_fields(out.shape, out.dtype, not out.flags.writeable, shape, dtype)
    return base_view(out)


def no_out(kind: str, out: object) -> None:
    """Kinds that are immutable (dask) or rebuilt (xarray) take no ``out``."""
    if out is not None:
        hint = ("use the returned array, or dask.array.store it"
                if kind == "dask" else "use the returned object")
        raise TypeError(f"out= is not supported with {kind} objects; {hint}")


# ---------------------------------------------------------------- host arrays

def base_view(a: NDArray[_Scalar]) -> NDArray[_Scalar]:
    """The same memory as exactly ``numpy.ndarray`` (a subclass's own
    ``reshape``/indexing may differ: ``np.matrix`` stays 2-D)."""
    return a if type(a) is np.ndarray else a.view(np.ndarray)


_FAST_ALPHA_MAX: dict[np.dtype[Any], float] = {
    _F32: float(np.finfo(np.float32).max), _F64: float(np.finfo(np.float64).max)
}


def plain_out(g: object, x: object, alpha: object, out: object) -> NDArray[Any] | None:
    """Where the plain case writes (``out``, or a new array), or None when the
    call is not the plain case.

    The plain case: ``x`` (and ``g``, for backward; pass ``g = x`` otherwise)
    are exactly ``numpy.ndarray``, C-contiguous, aligned, native float32 or float64,
    of one dtype and shape; ``alpha`` is a Python float finite in that dtype;
    ``out`` is None or an exact, C-contiguous, writable ndarray of that dtype
    and shape that is ``x`` (or ``g``) itself or shares no memory with them.
    Anything else takes the general path, which gives the same bits.
    """
    if type(x) is not np.ndarray or type(g) is not np.ndarray:
        return None
    # (each ``.flags`` access builds an object: read it once, and use the
    # combined ``carray`` = C-contiguous, aligned and writeable, for out)
    limit = _FAST_ALPHA_MAX.get(x.dtype)
    if limit is None or type(alpha) is not float or not -limit <= alpha <= limit:  # NaN: False
        return None
    flags = x.flags
    if not (flags.c_contiguous and flags.aligned):
        return None
    if g is not x:
        flags = g.flags
        if (g.dtype != x.dtype or g.shape != x.shape
                or not (flags.c_contiguous and flags.aligned)):
            return None
    if out is None:
        return np.empty(x.shape, x.dtype)
    if (
        type(out) is np.ndarray
        and out.dtype == x.dtype
        and out.shape == x.shape
        and out.flags.carray
        and (out is x or not np.may_share_memory(out, x))
        and (out is g or not np.may_share_memory(out, g))
    ):
        return out
    return None


# ---------------------------------------------------------------- kinds

# Which library's kind of array a call returns when its inputs are of
# several kinds: the one that can hold the others, as their own binary
# operators decide (xarray wraps dask wraps NumPy; NumPy defers to both).
# Pairs that no library defines raise.
HOST, DEVICE, TORCH, DASK, XARRAY = "host", "device", "torch", "dask", "xarray"
_PRIORITY = {HOST: 0, DEVICE: 1, TORCH: 1, DASK: 2, XARRAY: 3}
_UNDEFINED = (
    frozenset({TORCH, DASK}),
    frozenset({TORCH, DEVICE}),
    frozenset({TORCH, XARRAY}),
)
_KIND_NAMES = {HOST: "NumPy array", DEVICE: "CUDA device array", TORCH: "torch.Tensor",
               DASK: "dask array", XARRAY: "xarray object"}


def kind_of(obj: object) -> str:
    """The kind of one argument, from its type alone: never imports the
    library that made it."""
    t = type(obj)
    if t is np.ndarray or obj is None:
        return HOST
    module = t.__module__
    top = module.partition(".")[0]
    if top in ("numpy", "builtins", "pandas"):
        return HOST
    if top == "xarray":
        return XARRAY
    if top == "dask":
        return DASK
    if top == "torch":
        return TORCH
    # CuPy arrays, Numba device arrays, anything exporting the CUDA array
    # interface; Numba's simulated device arrays have no such attribute.
    if hasattr(obj, "__cuda_array_interface__") or module.startswith("numba.cuda.simulator"):
        return DEVICE
    return HOST


def call_kind(arrays: Iterable[object], out: object) -> str:
    """The kind of the call's result: the highest-priority kind among the
    inputs and ``out``, whatever their order; TypeError for a mix that no
    library defines (a torch tensor with a dask array)."""
    kinds = {kind_of(a) for a in arrays}
    if out is not None:
        kinds.add(kind_of(out))
    if len(kinds) == 1:
        return kinds.pop()
    for pair in _UNDEFINED:
        if pair <= kinds:
            a, b = sorted(pair)
            raise TypeError(
                f"cannot combine a {_KIND_NAMES[a]} with a {_KIND_NAMES[b]}: no library "
                "defines that mix; convert one of them first"
            )
    return max(kinds, key=_PRIORITY.__getitem__)


# ---------------------------------------------------------------- host inputs

class HostCall:
    """Host inputs as base-class ndarrays, and how to give the result back
    in the caller's kind, as a NumPy ufunc would.

    - ``np.ndarray`` subclasses come back as their class through their own
      ``__array_wrap__`` (``np.matrix`` stays a matrix; ``np.memmap`` gives a
      plain ndarray, as ufuncs give);
    - a ``MaskedArray`` keeps its mask (the masks of all inputs, or-ed; the
      data is computed everywhere, as ``np.maximum`` does);
    - a pandas ``Series`` / ``DataFrame`` keeps its index, columns and name;
    - Python scalars give a NumPy scalar, lists an ndarray.
    When several inputs have a kind, the one NumPy would pick wins (the
    highest ``__array_priority__``: pandas, then masked arrays, then
    matrices); between two of one kind, x's (pandas objects are not aligned
    on their index: they must have x's shape).
    """

    __slots__ = ("arrays", "scalar", "_wrapper", "_mask")
    arrays: list[NDArray[Any]]
    scalar: bool
    _wrapper: object
    _mask: _Mask

    def __init__(self, arrays: Iterable[object]) -> None:
        self.arrays = []
        self.scalar = True
        self._wrapper = None
        self._mask = np.ma.nomask
        best = -math.inf
        for a in arrays:
            if type(a) is np.ndarray:
                self.scalar = False
                self.arrays.append(a)
                continue
            if isinstance(a, np.ndarray):
                self.scalar = False
                if isinstance(a, np.ma.MaskedArray):
                    self._mask = np.ma.mask_or(self._mask, np.ma.getmask(a), shrink=True)
                priority = _priority(a)
                base = base_view(a.data if isinstance(a, np.ma.MaskedArray) else a)
            elif _is_pandas(a):
                self.scalar = False
                priority = 1000.0
                base = base_view(np.asarray(a))
            else:  # Python scalars, lists, NumPy scalars, other array-likes
                self.arrays.append(base_view(np.asarray(a)))
                continue
            if priority >= best:  # a tie goes to x, the last input
                best, self._wrapper = priority, a
            self.arrays.append(base)

    def wrap(self, result: NDArray[Any], out: object = None) -> object:
        """The result in the caller's kind (``out`` itself when given)."""
        if out is not None:
            if isinstance(out, np.ma.MaskedArray):
                _replace_mask(out, self._mask_for(out.shape))
            return out
        like = self._wrapper
        if like is None:
            return result[()] if self.scalar else result
        if isinstance(like, np.ma.MaskedArray):
            return np.ma.MaskedArray(result, mask=self._mask_for(result.shape))
        if isinstance(like, np.ndarray):
            return like.__array_wrap__(result, None, False)
        if _is_pandas(like):
            return _pandas_like(like, result)
        return result

    def _mask_for(self, shape: tuple[int, ...]) -> _Mask:
        if self._mask is np.ma.nomask:
            return np.ma.nomask
        mask: NDArray[np.bool_] = np.broadcast_to(self._mask, shape).copy()
        return mask


def _priority(a: object) -> float:
    try:
        return float(getattr(a, "__array_priority__", 0.0))
    except (TypeError, ValueError):  # NumPy ignores a priority that is not a number
        return 0.0


def _replace_mask(out: np.ma.MaskedArray[Any, Any], mask: _Mask) -> None:
    """Give ``out`` this mask as a ufunc's ``out=`` does: a hard mask too is
    replaced, and a mask ``out`` shares with another array (an input's,
    say) is copied first, so that no other array's mask changes."""
    hard = out.hardmask
    if hard:
        out.soften_mask()
    out.unshare_mask()
    out.mask = False if mask is np.ma.nomask else mask
    if hard:
        out.harden_mask()


def _is_pandas(obj: object) -> bool:
    return type(obj).__module__.partition(".")[0] == "pandas" and hasattr(obj, "index")


def _pandas_like(like: Any, result: NDArray[Any]) -> object:
    """``result`` as a pandas object like ``like`` (a Series or DataFrame;
    pandas has no type information)."""
    import pandas as pd

    if isinstance(like, pd.DataFrame):
        return pd.DataFrame(result, index=like.index, columns=like.columns, copy=False)
    return pd.Series(result, index=like.index, name=getattr(like, "name", None), copy=False)
