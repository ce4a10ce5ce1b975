"""Helpers for testing code against fastleaky's reference (used by its own tests)."""

from __future__ import annotations

import numpy as np

__all__ = ["assert_bitwise_equal"]


def assert_bitwise_equal(actual: object, expected: object) -> None:
    """Raise unless ``actual`` and ``expected`` are the same bits.

    Like ``numpy.testing``'s assertions, it raises ``AssertionError`` with a
    message under every optimisation level (``python -O`` included).

    Parameters
    ----------
    actual, expected : array_like
        Both NumPy arrays, or both not (a scalar is not a 0-d array); of
        the same shape and dtype, and element by element the same bits:
        NaN payloads and the sign of zero count.  ``longdouble`` (whose
        padding bytes have no defined content) is compared by value, with
        NaN equal to NaN and the sign of zero counting.

    Raises
    ------
    AssertionError
        Saying what differs first: array or not, shape, dtype, or the
        number of differing elements and the first of them.
    """
    __tracebackhide__ = True  # pytest: report the caller's line
    actual_arr = np.asarray(actual)
    expected_arr = np.asarray(expected)
    if isinstance(actual, np.ndarray) != isinstance(expected, np.ndarray):
        raise AssertionError(f"got {type(actual).__name__}, expected {type(expected).__name__}")
    if actual_arr.shape != expected_arr.shape:
        raise AssertionError(f"shapes differ: got {actual_arr.shape}, "
                             f"expected {expected_arr.shape}")
    if actual_arr.dtype != expected_arr.dtype:
        raise AssertionError(f"dtypes differ: got {actual_arr.dtype}, "
                             f"expected {expected_arr.dtype}")
    if actual_arr.dtype.kind in "fc" and actual_arr.dtype.itemsize not in (2, 4, 8):
        _assert_same_values(actual_arr, expected_arr)
        return
    bits = np.dtype(f"u{actual_arr.dtype.itemsize}")
    a = np.ascontiguousarray(actual_arr).view(bits)
    e = np.ascontiguousarray(expected_arr).view(bits)
    if not np.array_equal(a, e):
        bad = np.flatnonzero(a.ravel() != e.ravel())
        i = bad[0]
        raise AssertionError(
            f"{bad.size} of {a.size} elements differ; first at flat index {i}: "
            f"got {actual_arr.ravel()[i]!r} (0x{int(a.ravel()[i]):x}), "
            f"expected {expected_arr.ravel()[i]!r} (0x{int(e.ravel()[i]):x})"
        )


def _assert_same_values(actual: np.ndarray, expected: np.ndarray) -> None:
    """longdouble (and its complex): values, NaN-ness and sign, part by part."""
    __tracebackhide__ = True
    parts = ((actual.real, expected.real), (actual.imag, expected.imag)) \
        if actual.dtype.kind == "c" else ((actual, expected),)
    same = np.ones(actual.shape, dtype=bool)
    for a, e in parts:
        same &= (a == e) | (np.isnan(a) & np.isnan(e))
        same &= np.signbit(a) == np.signbit(e)
    if not same.all():
        bad = np.flatnonzero(~same.ravel())
        i = bad[0]
        raise AssertionError(
            f"{bad.size} of {same.size} elements differ; first at flat index {i}: "
            f"got {actual.ravel()[i]!r}, expected {expected.ravel()[i]!r}"
        )
