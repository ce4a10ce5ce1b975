"""Types of oneTBB's scheduler for the compiled loops (``_tbb_pool.pyx``)."""

from typing_extensions import CapsuleType

#: The name ``_cython_loop.use_pool`` checks before it calls the pointer.
CAPSULE_NAME: bytes

def parallel_for() -> CapsuleType: ...
def concurrency() -> int: ...
def version() -> str: ...
