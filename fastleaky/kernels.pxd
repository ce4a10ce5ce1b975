# cython: language_level=3
"""The LeakyReLU scalar kernels as ``cdef inline`` functions for Cython code.

``cimport fastleaky.kernels`` (or ``from fastleaky.kernels cimport
leaky_relu``) in your own ``.pyx`` and call them inside ``nogil`` loops; they
compile to the same select the fastleaky backends use, bit-exact with
``fastleaky.reference`` when ``alpha`` is first cast to the array's type.
Build with ``-fno-trapping-math`` (no result changes) so that GCC turns the
select into SIMD blends instead of a branch per element.
"""

ctypedef fused floating:
    float
    double

cdef inline floating leaky_relu(floating x, floating alpha) noexcept nogil:
    """``x`` if ``x > 0`` else ``alpha * x`` (NaN stays NaN, -0.0 gives -0.0*alpha)."""
    return x if x > 0 else x * alpha

cdef inline floating leaky_relu_grad(floating x, floating alpha) noexcept nogil:
    """1 where ``x > 0``, ``alpha`` elsewhere (including x == 0 and NaN)."""
    return 1 if x > 0 else alpha

cdef inline floating leaky_relu_backward(floating grad_output, floating x,
                                         floating alpha) noexcept nogil:
    """``grad_output * leaky_relu_grad(x, alpha)`` as one select."""
    return grad_output if x > 0 else grad_output * alpha
