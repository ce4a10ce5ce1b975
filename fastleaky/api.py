"""The public functions: validate once, promote, allocate or check ``out``,
pick a backend, run its kernel on flat contiguous buffers, return the caller's
kind of array.

Kernels never see strides, byte order, overlap or mixed dtypes: this module
makes contiguous native-order copies where needed (at most one per input)
and computes into a scratch buffer when ``out`` itself is not contiguous.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import interop, registry

__all__ = ["leaky_relu", "leaky_relu_grad", "leaky_relu_backward"]

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_NATIVE_FLOATS = {_F16: np.float16, _F32: np.float32, _F64: np.float64}


def leaky_relu(x, alpha=0.01, *, out=None, backend="auto"):
    """LeakyReLU: ``x`` where ``x > 0``, ``alpha * x`` elsewhere.

    Parameters
    ----------
    x : array_like
        Real input. float16/32/64 are computed natively; bool and integer
        input gives float64 (NumPy's promotion); longdouble is computed by
        the NumPy reference. Device arrays (``__cuda_array_interface__``),
        PyTorch tensors, dask and xarray objects come back as the same kind.
    alpha : float, optional
        Slope for ``x <= 0``: any finite real number (negative and > 1
        allowed), cast to the result dtype first. Default 0.01.
    out : ndarray, optional
        Where to write the result: the result's shape and dtype, writable.
        ``out=x`` works in place; partial overlap with ``x`` is handled.
    backend : str, optional
        ``"auto"`` (default), ``"numpy"``, ``"cython"``, ``"numba-cpu"``,
        ``"numba-parallel"`` or ``"cuda"``; see ``fastleaky.backends()``.

    Returns
    -------
    ndarray or scalar
        Like a NumPy ufunc: a scalar for scalar input, ``out`` if given.

    Raises
    ------
    TypeError
        Complex, object, string or datetime input; non-real alpha; ``out``
        of the wrong type or dtype.
    ValueError
        NaN/inf alpha; ``out`` of the wrong shape or read-only; an unknown
        backend name.
    fastleaky.BackendUnavailableError
        A named backend cannot run here (the message says why).
    """
    result = _compiled_call(_FORWARD, x, x, alpha, out, backend)
    if result is not None:
        return result
    return _dispatch("forward", (x,), alpha, out, backend)


def leaky_relu_grad(x, alpha=0.01, *, out=None, backend="auto"):
    """Derivative of LeakyReLU: 1 where ``x > 0``, ``alpha`` elsewhere.

    At exactly ``x == 0`` (and for NaN) the result is ``alpha``, as in
    PyTorch. Parameters, return value and errors as for ``leaky_relu``.
    """
    result = _compiled_call(_GRAD, x, x, alpha, out, backend)
    if result is not None:
        return result
    return _dispatch("grad", (x,), alpha, out, backend)


def leaky_relu_backward(grad_output, x, alpha=0.01, *, out=None, backend="auto"):
    """Backward pass: ``grad_output * leaky_relu_grad(x, alpha)`` in one pass.

    ``grad_output`` and ``x`` must have the same shape; the result dtype is
    their promoted floating dtype. Other parameters, return value and errors
    as for ``leaky_relu``.
    """
    result = _compiled_call(_BACKWARD, grad_output, x, alpha, out, backend)
    if result is not None:
        return result
    return _dispatch("backward", (grad_output, x), alpha, out, backend)


# The public function of each operation name the adapters pass around.
BY_OP = {"forward": leaky_relu, "grad": leaky_relu_grad, "backward": leaky_relu_backward}


# ---------------------------------------------------------------- internals

# The fast path.  The common call -- C-contiguous float32/float64 ndarrays,
# a Python-float alpha, no out or a contiguous out that is x itself or does
# not overlap, backend "cython" or "auto" resolving to it -- goes straight to
# the compiled loops; everything else (and anything this path is unsure of)
# takes the general path, which gives the same bits.  Profiled at 100 float64
# elements: general path ~5 us of Python a call, fast path ~0.5 us (checks
# and the thread choice in C: ``_cython_loop.plain_call``), against 0.8 us
# for np.maximum(x, x*a).  The Numba backends take ``_plain_call``: the same
# checks in Python, ~2.2 us a call on top of the 0.4 us of Numba's own
# dispatch (measured on 1-element arrays).
_FORWARD, _GRAD, _BACKWARD = 0, 1, 2
_OP_NAMES = ("forward", "grad", "backward")
_loop = None  # the Cython loop module once the fast path is set up
_auto_is_cython = False  # whether "auto" (with no context/env choice) picks it
_FAST_ALPHA_MAX = {_F32: float(np.finfo(np.float32).max), _F64: float(np.finfo(np.float64).max)}


def _compiled_call(op, g, x, alpha, out, backend):
    """The result, or None when the general path must handle the call."""
    if backend == "auto":
        if _loop is None:
            _setup_fast_path()
        if not _auto_is_cython or registry._current.get() is not None:
            return None
    elif backend in _NUMBA_NAMES:
        if not registry.availability(backend)[0]:
            return None  # the general path raises, saying why
        return _plain_call(op, g, x, alpha, out, registry.load(backend))
    elif backend != "cython" or (_loop is None and not _setup_fast_path()):
        return None
    # alpha crosses as a C double and is cast to float32 in C, which rounds
    # like NumPy's cast: the same bits as cast_alpha.
    result = _loop.plain_call(op, g, x, alpha, out)
    return None if result is NotImplemented else result


_NUMBA_NAMES = ("numba-cpu", "numba-parallel")


def _plain_call(op, g, x, alpha, out, impl):
    """The plain case (see ``_plain_out``) on backend ``impl``, skipping the
    general path's ~5 us (8% of a Numba call at 1e6 float32 elements); None
    when the call is not the plain case."""
    out = _plain_out(g, x, alpha, out)
    if out is None:
        return None
    a = x.dtype.type(alpha)  # typed: Numba would compile a float64 multiply for a float
    flat_out = out.reshape(-1)  # the kernels take 1-D arrays (views here)
    if op == _BACKWARD:
        impl.backward(g.reshape(-1), x.reshape(-1), a, flat_out)
    else:
        getattr(impl, _OP_NAMES[op])(x.reshape(-1), a, flat_out)
    return out


def _plain_out(g, x, alpha, out):
    """Where the plain case writes (``out``, or a new array), or None when the
    call is not the plain case: exact C-contiguous float32/float64 ndarrays of
    one dtype and shape, a Python-float alpha finite in that dtype, and an
    ``out`` that is x (or g) itself or does not overlap them."""
    if type(x) is not np.ndarray or type(g) is not np.ndarray:
        return None
    limit = _FAST_ALPHA_MAX.get(x.dtype)
    if (
        limit is None
        or type(alpha) is not float
        or not -limit <= alpha <= limit  # also False for NaN
        or not x.flags.c_contiguous
    ):
        return None
    if g is not x and (g.dtype != x.dtype or g.shape != x.shape or not g.flags.c_contiguous):
        return None
    if out is None:
        return np.empty_like(x)
    if (
        type(out) is np.ndarray
        and out.dtype == x.dtype
        and out.shape == x.shape
        and out.flags.c_contiguous
        and out.flags.writeable
        and (out is x or not np.may_share_memory(out, x))
        and (out is g or not np.may_share_memory(out, g))
    ):
        return out
    return None


def _setup_fast_path() -> bool:
    """Set up the fast path if the Cython loops are available; True if so."""
    global _loop, _auto_is_cython
    if not registry.availability("cython")[0]:
        return False
    from . import config, threads
    from ._backends import cython_backend

    _auto_is_cython = registry.default_name() == "auto" and all(
        registry.auto_host(t, n) == "cython" for t in (np.float32, np.float64) for n in (1, 1 << 40)
    )
    loop = cython_backend._loop
    loop.set_plain_call_config(config.parallel_min_for(_F32), config.parallel_min_for(_F64),
                               threads._limit, config.ENV_THREADS)
    _loop = loop
    return True


def reset_fast_path() -> None:
    """Forget the fast path's cached decisions (after tuning or registry changes)."""
    global _loop, _auto_is_cython
    _loop, _auto_is_cython = None, False


def _dispatch(op, arrays, alpha, out, backend):
    if not all(type(a) is np.ndarray for a in arrays):
        adapter = interop.adapter(arrays, out)
        if adapter is not None:
            return adapter.dispatch(op, arrays, alpha, out, backend)
    return _host(op, arrays, alpha, out, backend)


def check_alpha(alpha):
    """Validate alpha (finite real scalar); returns it unchanged or as a scalar."""
    if type(alpha) is float:
        value = alpha
    elif isinstance(alpha, (numbers.Real, np.integer, np.floating, np.bool_)):
        value = float(alpha)
    elif isinstance(alpha, np.ndarray) or hasattr(alpha, "__array__"):
        arr = np.asarray(alpha)
        if arr.size != 1:
            raise TypeError(f"alpha must be a real scalar, got an array of shape {arr.shape}")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"alpha must be a real number, got dtype {arr.dtype}")
        alpha = arr.reshape(())[()]
        value = float(alpha)
    else:
        raise TypeError(f"alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
    if not math.isfinite(value):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return alpha


_CAST_SAFE = {dt: float(np.finfo(dt).max) / 2 for dt in (_F16, _F32, _F64)}


def cast_alpha(alpha, dtype: np.dtype):
    """alpha as a scalar of ``dtype``; ValueError if it overflows there."""
    safe = _CAST_SAFE.get(dtype)
    if safe is not None and type(alpha) is float and -safe <= alpha <= safe:
        return dtype.type(alpha)  # cannot overflow: no errstate needed (~1.4 us)
    with np.errstate(over="ignore"):
        a = dtype.type(alpha)
    if not np.isfinite(a):
        raise ValueError(f"alpha={alpha!r} is not finite in {dtype.name}")
    return a


def result_dtype(dtypes) -> np.dtype:
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


def check_out(out, shape, dtype):
    """Raise before any write if ``out`` cannot receive the result."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    check_out_fields(out.shape, out.dtype, not out.flags.writeable, shape, dtype)


def check_out_fields(out_shape, out_dtype, readonly, shape, dtype):
    """The checks of ``check_out`` on an output described by its fields (any
    array library), with the same errors."""
    if out_shape != shape:
        raise ValueError(f"out has shape {out_shape}, the result has shape {shape}")
    if out_dtype != dtype:
        raise TypeError(f"out has dtype {out_dtype}, the result has dtype {dtype}")
    if readonly:
        raise ValueError("out is read-only")


def _same_memory(a, b) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
    )


def _flat_input(arr, dtype, order, target):
    """A flat view of ``arr`` in ``order``, or a contiguous copy when it is not
    already one or when it partially overlaps the output."""
    contiguous = arr.flags.c_contiguous if order == "C" else arr.flags.f_contiguous
    if arr.dtype == dtype and contiguous:
        if not np.may_share_memory(arr, target) or _same_memory(arr, target):
            return arr.reshape(-1, order=order)
    # A signaling NaN raises "invalid" when cast to a wider float; the cast
    # is exact otherwise, and results never raise a RuntimeWarning.
    with np.errstate(invalid="ignore"):
        flat = np.array(arr, dtype=dtype, order=order, copy=True)
    return flat.reshape(-1, order=order)


def _host(op, arrays, alpha, out, backend):
    scalar_input = True
    xs = []
    for a in arrays:
        if isinstance(a, np.ndarray):
            scalar_input = False
        else:
            a = np.asarray(a)
        xs.append(a)
    x = xs[-1]
    dtype = result_dtype([a.dtype for a in xs])
    shape = x.shape
    if len(xs) == 2 and xs[0].shape != shape:
        raise ValueError(
            f"grad_output has shape {xs[0].shape} but x has shape {shape}; they must match"
        )
    a = cast_alpha(check_alpha(alpha), dtype)
    impl = _pick(registry.requested_name(backend), dtype, x.size)
    if out is not None:
        check_out(out, shape, dtype)

    # Where the kernel writes: out itself when contiguous, else a scratch buffer.
    if out is None:
        order = "F" if (x.flags.f_contiguous and not x.flags.c_contiguous) else "C"
        result = target = np.empty(shape, dtype, order=order)
    else:
        result = out
        if out.flags.c_contiguous:
            order, target = "C", out
        elif out.flags.f_contiguous:
            order, target = "F", out
        else:
            order, target = "C", np.empty(shape, dtype)
    flats = [_flat_input(arr, dtype, order, target) for arr in xs]
    getattr(impl, op)(*flats, a, target.reshape(-1, order=order))
    if target is not result:
        np.copyto(result, target)
    if scalar_input and out is None:
        return result[()]
    return result


def _pick(name, dtype, size):
    """The backend object for this call (NumPy reference for non-native dtypes)."""
    if name == "auto":
        scalar_type = _NATIVE_FLOATS.get(dtype)
        return registry.load(registry.auto_host(scalar_type, size))
    impl = registry.require(name)
    if registry.device(name) != "cpu":
        return impl
    if _NATIVE_FLOATS.get(dtype) in impl.native_dtypes():
        return impl
    return registry.load("numpy")
