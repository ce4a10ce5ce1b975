"""Helpers for testing code against fastleaky's reference (used by its own tests)."""

from __future__ import annotations

import numpy as np

__all__ = ["assert_bitwise_equal"]


def assert_bitwise_equal(actual, expected) -> None:
    """Same type kind, shape, dtype and bits (NaN payloads and signed zeros included)."""
    actual_arr = np.asarray(actual)
    expected_arr = np.asarray(expected)
    assert isinstance(actual, np.ndarray) == isinstance(expected, np.ndarray), (
        f"got {type(actual).__name__}, expected {type(expected).__name__}"
    )
    assert actual_arr.shape == expected_arr.shape, (actual_arr.shape, expected_arr.shape)
    assert actual_arr.dtype == expected_arr.dtype, (actual_arr.dtype, expected_arr.dtype)
    if actual_arr.dtype.itemsize not in (2, 4, 8):
        # longdouble has padding bytes with no defined content: compare
        # values, NaN-ness and sign instead of raw bits.
        same = (actual_arr == expected_arr) | (np.isnan(actual_arr) & np.isnan(expected_arr))
        same &= np.signbit(actual_arr) == np.signbit(expected_arr)
        assert same.all(), f"values differ: got {actual_arr!r}, expected {expected_arr!r}"
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
