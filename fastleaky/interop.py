"""Non-NumPy inputs: recognised here, handled by the adapter that knows them.

``is_foreign`` is the cheap test the API runs when an input is not a plain
ndarray; ``dispatch`` hands the call to the adapter for that kind.  Lists,
scalars and ndarray subclasses are not foreign: they take the host path.
"""

from __future__ import annotations

# (test, handler module) pairs; a handler module exposes ``dispatch``.
_ADAPTERS: list = []


def _adapter_for(obj):
    for test, handler in _ADAPTERS:
        if test(obj):
            return handler
    return None


def is_foreign(arrays, out) -> bool:
    if not _ADAPTERS:
        return False
    return any(_adapter_for(a) is not None for a in (*arrays, out) if a is not None)


def dispatch(op, arrays, alpha, out, backend):
    for a in (*arrays, out):
        if a is not None:
            handler = _adapter_for(a)
            if handler is not None:
                return handler(op, arrays, alpha, out, backend)
    raise AssertionError("dispatch called without a foreign input")
