"""fastleaky.torch against torch.nn.functional.leaky_relu, bit for bit, and
tensors through fastleaky.leaky_relu."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastleaky  # noqa: E402
import fastleaky.torch as ft  # noqa: E402
from fastleaky import cases, reference  # noqa: E402
from fastleaky.testing import assert_bitwise_equal  # noqa: E402

# Every test on both of fastleaky.torch's paths: the Python autograd.Function
# and the C++ node.
pytestmark = pytest.mark.usefixtures("torch_path")

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
_INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t):
    return t.detach().contiguous().view(_INT_OF_SIZE[t.element_size()]).numpy()


def _sample(dtype, n=1000, seed=0):
    """Normal values with NaN, +-inf, +-0.0, subnormals and extremes of ``dtype``.

    No signalling NaNs: PyTorch's backward multiplies grad_output by 1 where
    x > 0, which quiets them (fastleaky, like its NumPy reference, passes
    grad_output through), and it rounds a signalling float32 NaN to a
    bfloat16 infinity."""
    if dtype == torch.bfloat16:
        values = cases.sample("float32", n, seed, signalling=False)
        return torch.from_numpy(values).to(torch.bfloat16)
    return torch.from_numpy(
        cases.sample(str(dtype).removeprefix("torch."), n, seed, signalling=False))


def _torch_reference(x, g, slope):
    """PyTorch's forward and input gradient (never in place)."""
    leaf = x.clone().requires_grad_()
    y = F.leaky_relu(leaf, slope)
    y.backward(g)
    return y.detach(), leaf.grad


@pytest.mark.parametrize("inplace", [False, True], ids=["out-of-place", "inplace"])
@pytest.mark.parametrize("slope", cases.ALPHAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bit_exact_with_torch(dtype, slope, inplace):
    x, g = _sample(dtype), _sample(dtype, seed=1)
    want_y, want_grad = _torch_reference(x, g, slope)
    leaf = x.clone().requires_grad_()
    y = ft.leaky_relu(leaf * 1 if inplace else leaf, slope, inplace)
    y.backward(g)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(_bits(y), _bits(want_y))
    np.testing.assert_array_equal(_bits(leaf.grad), _bits(want_grad))


def test_grad_at_zero_is_the_slope():
    x = torch.tensor([0.0, -0.0, 1.0, -1.0], dtype=torch.float64, requires_grad=True)
    ft.leaky_relu(x, 0.2).sum().backward()
    assert x.grad.tolist() == [0.2, 0.2, 1.0, 0.2]


@pytest.mark.parametrize("slope,inplace", [(0.2, False), (-0.3, False), (0.2, True),
                                           (0.0, True), (-0.3, True), (1.5, True)])
def test_gradcheck(slope, inplace):
    # values away from the kink at 0, where the numerical derivative is not defined
    x = torch.linspace(-2, 2, 24, dtype=torch.float64).add_(0.05).requires_grad_()

    def f(t):
        return ft.leaky_relu(t * 1 if inplace else t, slope, inplace)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_inplace_negative_slope_saves_a_mask():
    # output > 0 on both sides for a negative slope: backward must not use it
    x = torch.tensor([-2.0, 3.0, 0.0, -0.5], requires_grad=True)
    y = x * 1
    out = ft.leaky_relu(y, -0.5, inplace=True)
    assert out is y
    assert out.tolist() == [1.0, 3.0, -0.0, 0.25]
    out.sum().backward()
    assert x.grad.tolist() == [-0.5, 1.0, -0.5, -0.5]


def test_inplace_is_checked_like_torch():
    leaf = torch.randn(5, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        ft.leaky_relu(leaf, 0.1, inplace=True)
    # modifying the saved output afterwards is caught by the version counter
    y = ft.leaky_relu(leaf * 1, 0.1, inplace=True)
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_without_grad_writes_the_tensor():
    x = torch.tensor([-1.0, 2.0])
    assert ft.leaky_relu(x, 0.5, inplace=True) is x
    assert x.tolist() == [-0.5, 2.0]


def test_non_contiguous_input():
    base = _sample(torch.float32, 60 * 7).reshape(60, 7).t()[:, ::2]
    g = _sample(torch.float32, base.numel(), seed=2).reshape(base.shape)
    want_y, want_grad = _torch_reference(base, g, 0.01)
    leaf = base.clone().requires_grad_()
    y = ft.leaky_relu(leaf)
    y.backward(g)
    np.testing.assert_array_equal(_bits(y), _bits(want_y))
    np.testing.assert_array_equal(_bits(leaf.grad), _bits(want_grad))


@pytest.mark.parametrize("backend", ["numpy", "cython", "numba-cpu"])
def test_every_host_backend(backend):
    from fastleaky import registry

    if not registry.availability(backend)[0]:
        pytest.skip(f"{backend} unavailable")
    x, g = _sample(torch.float32), _sample(torch.float32, seed=1)
    want_y, want_grad = _torch_reference(x, g, 0.2)
    leaf = x.clone().requires_grad_()
    y = ft.LeakyReLU(0.2, backend=backend)(leaf)
    y.backward(g)
    np.testing.assert_array_equal(_bits(y), _bits(want_y))
    np.testing.assert_array_equal(_bits(leaf.grad), _bits(want_grad))


def test_module():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), ft.LeakyReLU(0.2), torch.nn.Linear(3, 1))
    assert "LeakyReLU(negative_slope=0.2)" in repr(model)
    assert repr(ft.LeakyReLU(0.1, inplace=True)) == "LeakyReLU(negative_slope=0.1, inplace=True)"
    model(torch.randn(8, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_arguments():
    with pytest.raises(TypeError, match="torch.Tensor"):
        ft.leaky_relu(np.ones(3))
    with pytest.raises(TypeError, match="floating tensor"):
        ft.leaky_relu(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="finite"):
        ft.leaky_relu(torch.ones(3), float("nan"))
    with pytest.raises(ValueError, match="unknown fastleaky backend"):
        ft.LeakyReLU(backend="fortran")


# ---------------------------------------- plain tensors through fastleaky.*

@pytest.mark.parametrize("op", ["forward", "grad", "backward"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_plain_tensor_follows_the_reference(op, dtype):
    x = cases.sample(dtype, 500)
    g = cases.sample(dtype, 500, seed=3)
    if op == "backward":
        got = fastleaky.leaky_relu_backward(torch.from_numpy(g), torch.from_numpy(x), 0.2)
        want = reference.leaky_relu_backward(g, x, 0.2)
    else:
        func = {"forward": fastleaky.leaky_relu, "grad": fastleaky.leaky_relu_grad}[op]
        got = func(torch.from_numpy(x), 0.2)
        want = getattr(reference, func.__name__)(x, 0.2)
    assert isinstance(got, torch.Tensor)
    assert_bitwise_equal(got.numpy(), want)


def test_plain_tensor_out_and_in_place():
    x = torch.tensor([[-2.0, 1.0], [0.5, -4.0]]).t()  # non-contiguous
    out = torch.empty(2, 2)
    assert fastleaky.leaky_relu(x, 0.5, out=out) is out
    assert out.tolist() == [[-1.0, 0.5], [1.0, -2.0]]
    assert fastleaky.leaky_relu(x, 0.5, out=x) is x
    assert x.tolist() == [[-1.0, 0.5], [1.0, -2.0]]
    with pytest.raises(TypeError, match="dtype"):
        fastleaky.leaky_relu(x, out=torch.empty(2, 2, dtype=torch.float64))


def test_plain_tensor_kinds():
    zero_d = fastleaky.leaky_relu(torch.tensor(-2.0), 0.5)
    assert isinstance(zero_d, torch.Tensor) and zero_d.shape == () and zero_d.item() == -1.0
    ints = fastleaky.leaky_relu(torch.tensor([-2, 3]), 0.5)
    assert ints.dtype == torch.float64 and ints.tolist() == [-1.0, 3.0]
    with pytest.raises(TypeError, match="bfloat16"):
        fastleaky.leaky_relu(torch.ones(2, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="complex64"):
        fastleaky.leaky_relu(torch.ones(2, dtype=torch.complex64))


def test_plain_tensor_requiring_grad_is_refused():
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="fastleaky.torch.leaky_relu"):
        fastleaky.leaky_relu(x)
    with torch.no_grad():
        assert fastleaky.leaky_relu(x).tolist() == [1.0, 1.0, 1.0]
    assert not fastleaky.leaky_relu(x.detach()).requires_grad


# ------------------------------------------- tensor calls on torch's threads

def _torch_team():
    """The Cython loops' tensor entry, skipping where it is not on torch's team."""
    from fastleaky._interop import torch_tensors

    if torch_tensors.pointer_kernel() is None:
        pytest.skip("no compiled loops")
    if torch_tensors.pointer_threads() != "PyTorch's OpenMP team":
        pytest.skip(f"tensor calls run on {torch_tensors.pointer_threads()}")
    from fastleaky._backends import _cython_loop

    return _cython_loop


def test_tensor_calls_follow_torch_set_num_threads():
    loop = _torch_team()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert loop.team_threads() == 1
        torch.set_num_threads(2)
        assert loop.team_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
def test_tensor_calls_on_torchs_team_follow_the_callers_flush_mode(dtype):
    """Parallel tensor calls, on torch's own threads, give what the
    reference gives in the calling thread after ``set_flush_denormal``
    (torch's own kernels do not hand the mode to its threads)."""
    _torch_team()
    n = 1_000_003  # above every parallel threshold; an odd tail
    ft.leaky_relu(torch.ones(n, dtype=dtype), 0.01)  # torch's threads exist
    tiny = torch.finfo(dtype).tiny
    x = torch.tensor([-tiny * 2, tiny / 4, -tiny / 8, 1.5], dtype=dtype).repeat(n // 4 + 1)[:n]
    g = torch.full((n,), 3.0, dtype=dtype)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        want_y = reference.leaky_relu(x.numpy(), 0.01)
        want_g = reference.leaky_relu_backward(g.numpy(), x.numpy(), 0.01)
        leaf = x.clone().requires_grad_()
        y = ft.leaky_relu(leaf, 0.01)
        y.backward(g)
    finally:
        torch.set_flush_denormal(False)
    if dtype != torch.float16:  # float16 products are normal floats, rounded to half
        assert (want_y[0::4] == 0).all()  # the mode was on: the reference flushed
    assert_bitwise_equal(y.detach().numpy(), want_y)
    assert_bitwise_equal(leaf.grad.numpy(), want_g)


# ---------------------------------------------------------------- CUDA

@pytest.mark.gpu
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_bit_exact_with_torch(dtype, inplace):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    x = _sample(dtype).cuda()
    g = _sample(dtype, seed=1).cuda()
    want_y, want_grad = _torch_reference(x, g, 0.01)
    leaf = x.clone().requires_grad_()
    y = ft.leaky_relu(leaf * 1 if inplace else leaf, 0.01, inplace)
    y.backward(g)
    assert y.device == x.device
    np.testing.assert_array_equal(_bits(y.cpu()), _bits(want_y.cpu()))
    np.testing.assert_array_equal(_bits(leaf.grad.cpu()), _bits(want_grad.cpu()))


@pytest.mark.gpu
def test_cuda_plain_tensor():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    x = cases.sample("float32", 1000)
    y = fastleaky.leaky_relu(torch.from_numpy(x).cuda(), 0.2)
    assert isinstance(y, torch.Tensor) and y.is_cuda
    assert_bitwise_equal(y.cpu().numpy(), reference.leaky_relu(x, 0.2))
