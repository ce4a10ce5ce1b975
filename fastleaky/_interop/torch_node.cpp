// fastleaky.torch's autograd node in C++: LeakyReLU's forward and backward
// on fastleaky's compiled loops, with the backward recorded as a C++ node.
//
// A Python torch.autograd.Function costs a Python call, a context object
// and a Python backward node per call, several times the kernels' time on
// small tensors.  This node is what torch's own operators record: the
// forward computes on the tensor's memory and saves the input (torch checks
// its version when the backward unpacks it), and the backward runs as C++
// in the autograd engine.
//
// It takes the plain case only -- a CPU float32 or float64 tensor, dense in
// some memory order, aligned, no lazy negation bit, no forward-mode tangent
// -- and returns None for anything else (fastleaky.torch then takes its Python
// path, which gives the same bits).  The loops are fastleaky's own, reached
// through a function pointer the Cython extension hands over as a capsule
// (``bind``), so this module links against nothing of fastleaky's.

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/python_cpp_function.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#include <torch/csrc/Exceptions.h>
#include <torch/python.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

namespace {

// int f(int op, const void *g, const void *x, double alpha, void *out,
//       Py_ssize_t n, int typenum): 0, or -1 with a Python exception set.
using TensorCall = int (*)(int, const void *, const void *, double, void *, Py_ssize_t, int);

TensorCall tensor_call = nullptr;
int op_forward = -1, op_backward = -1, typenum_f32 = -1, typenum_f64 = -1;

int typenum_of(const at::Tensor &t) {
  switch (t.scalar_type()) {
    case at::kFloat: return typenum_f32;
    case at::kDouble: return typenum_f64;
    default: return -1;
  }
}

bool aligned(const at::Tensor &t) {
  return reinterpret_cast<std::uintptr_t>(t.data_ptr()) % t.element_size() == 0;
}

// Tensors the loops compute: ordinary strided CPU float32/float64 tensors
// (not a torch.func wrapper, a nested, sparse or Python-dispatched tensor,
// nor a ZeroTensor, whose data pointer is not their values).
bool computable(const at::Tensor &t) {
  const c10::TensorImpl *impl = t.unsafeGetTensorImpl();
  return typeid(*impl) == typeid(c10::TensorImpl) && t.layout() == at::kStrided &&
         !t.key_set().has(c10::DispatchKey::Python) && !t._is_zerotensor() &&
         t.device().is_cpu() && typenum_of(t) >= 0;
}

// Whether the loops may compute here on raw memory, outside the
// dispatcher: not under a torch.func transform, not while torch.jit.trace
// records, nor under a dispatch mode (FakeTensorMode, make_fx, its
// pre-dispatch tracing, a TorchDispatchMode), which see only what goes
// through the dispatcher -- and FakeTensorMode hands out tensors without
// memory.  Otherwise the operators run, which they see.  (fastleaky.torch's
// ``_direct`` in Python.)
bool direct() {
  const auto included = c10::impl::tls_local_dispatch_key_set().included_;
  // a torch.func transform: as torch._C._are_functorch_transforms_active() tells
  return !included.has(c10::DispatchKey::FuncTorchDynamicLayerFrontMode) &&
         !included.has(c10::DispatchKey::FuncTorchDynamicLayerBackMode) &&
         !torch::jit::tracer::isTracing() && !included.has(c10::DispatchKey::Python) &&
         !included.has(c10::DispatchKey::PreDispatch) &&  // make_fx(pre_dispatch=True)
         !c10::impl::TorchDispatchModeTLS::any_modes_set();
}

// ... and read as they are: n elements, dense in some memory order
// (contiguous, channels_last, a transpose), one dtype.
bool plain(const at::Tensor &t) {
  return computable(t) && t.unsafeGetTensorImpl()->is_non_overlapping_and_dense() &&
         !t.is_neg() && aligned(t);
}

// ``t``'s values laid out in memory as ``like``'s (plain) are.
at::Tensor laid_out_as(const at::Tensor &t, const at::Tensor &like) {
  if (plain(t) && ((t.is_contiguous() && like.is_contiguous()) || t.strides() == like.strides()))
    return t;
  return at::empty_like(like).copy_(t);
}

// ``op`` into a new tensor laid out as ``x`` (``self``, for the backward
// too), as torch's operators lay theirs out: contiguous strides for a
// contiguous ``x``, whatever its size-1 dimensions' strides; otherwise as
// empty_like gives it (a dense input's strides).  The loops run over the
// memory of ``g``, ``x`` and the result in the same order.  Called with or
// without the GIL (the loops' entry takes it); a Python exception it raised
// is rethrown as one that torch turns back into that exception.
at::Tensor compute(int op, const at::Tensor &g, const at::Tensor &x, double slope) {
  // below autograd, as torch's own kernels allocate (no autograd dispatch)
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::Tensor out = x.is_contiguous() ? at::empty(x.sizes(), x.options()) : at::empty_like(x);
  at::Tensor xl = laid_out_as(x, out), gl = &g == &x ? xl : laid_out_as(g, out);
  if (tensor_call(op, gl.const_data_ptr(), xl.const_data_ptr(), slope, out.mutable_data_ptr(),
                  out.numel(), typenum_of(out)) != 0) {
    pybind11::gil_scoped_acquire gil;
    throw python_error();
  }
  return out;
}

// As torch's own backward takes them (a saved-tensor hook may hand back a
// tensor of another dtype or a broadcastable shape): promoted, broadcast.
std::pair<at::Tensor, at::Tensor> as_one(at::Tensor g, at::Tensor x) {
  if (g.scalar_type() != x.scalar_type()) {
    auto common = at::promote_types(g.scalar_type(), x.scalar_type());
    g = g.to(common);
    x = x.to(common);
  }
  if (g.sizes() != x.sizes()) {
    auto both = at::broadcast_tensors({g, x});
    g = both[0];
    x = both[1];
  }
  return {g, x};
}

// fastleaky.torch's own differentiable backward (bound from Python): an
// autograd.Function with a double-backward and a forward-mode formula, so
// that create_graph gives a graph forward-mode AD goes through too
// (gradgradcheck's forward-over-reverse), which the operator's registered
// autograd formula does not.
PyObject *python_backward = nullptr;

// The backward operator, through the dispatcher (what compiled autograd
// traces; its autograd formula is registered from Python).
at::Tensor backward_op(const at::Tensor &g, const at::Tensor &x, double slope,
                       const std::string &backend) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("fastleaky::leaky_relu_backward", "")
                       .typed<at::Tensor(const at::Tensor &, const at::Tensor &, double,
                                         c10::string_view)>();
  return op.call(g, x, slope, backend);
}

// The backward node, built as torch's generated operators build theirs (a
// Node with its saved input and slope, not a custom-Function context: no
// per-call map of saved values, no Python).
struct LeakyReluBackward : public torch::autograd::Node {
  torch::autograd::SavedVariable x_;
  double slope_ = 0.0;
  std::string backend_;

  std::string name() const override { return "fastleaky::LeakyReluBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    x_.reset_data();
  }

  torch::autograd::variable_list apply(torch::autograd::variable_list &&grads) override {
    std::unique_lock<std::mutex> lock(mutex_);
    // Raises if x was modified in place since; a saved-tensor hook may hand
    // back any tensor, so nothing about it is taken for granted below.
    at::Tensor x = x_.unpack();
    lock.unlock();
    at::Tensor g = std::move(grads[0]);
    if (!g.defined() || !should_compute_output(0)) return {at::Tensor()};
    return {backward(std::move(g), std::move(x))};
  }

  at::Tensor backward(const at::Tensor &grad, const at::Tensor &saved) const {
    auto [g, x] = as_one(grad, saved);
    if (at::GradMode::is_enabled())  // create_graph: the backward is recorded too
      return differentiable_backward(g, x);
    if (!computable(g) || !computable(x) || !direct())
      return backward_op(g, x, slope_, backend_);
    return compute(op_backward, g, x, slope_);
  }

  at::Tensor differentiable_backward(const at::Tensor &g, const at::Tensor &x) const {
    if (python_backward == nullptr) return backward_op(g, x, slope_, backend_);
    pybind11::gil_scoped_acquire gil;
    try {
      return pybind11::handle(python_backward)(g, x, slope_, backend_).cast<at::Tensor>();
    } catch (pybind11::error_already_set &e) {  // torch rethrows it as it was raised
      e.restore();
      throw python_error();
    }
  }

  // Compiled autograd (torch._dynamo): the node takes part as torch's
  // generated nodes do, its backward traced as a call of the registered
  // backward operator on the graph's tensors.
  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs &args) const override {
    args.collect(x_, /*is_output=*/false);
    args.collect(slope_);
    args.collect(backend_);
  }

  torch::autograd::variable_list apply_with_saved(
      const torch::autograd::variable_list &grads,
      torch::dynamo::autograd::SwapSavedVariables &saved) override {
    namespace ca = torch::dynamo::autograd;
    saved.before(x_);
    ca::PackedArgs packed;
    packed.pack(x_.unpack());
    packed.pack(slope_);
    packed.pack(backend_);
    const auto &compiler = ca::getPyCompilerInterface();
    // bound once per process, as torch binds its generated nodes' (the
    // names live in one process-wide namespace)
    static const std::string fn_name = compiler->bind_function(
        saved.get_py_compiler(), name(), &traced_backward,
        {ca::IValuePacker<at::Tensor>::packed_type(), ca::IValuePacker<double>::packed_type(),
         ca::IValuePacker<std::string>::packed_type()});
    auto results = compiler->call_function(
        saved.get_py_compiler(), "apply_functional", fn_name, grads, std::move(packed).vec(),
        ca::IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
            ca::get_input_metadata(next_edges())));
    saved.after(x_);
    return results;
  }

  static torch::autograd::variable_list traced_backward(const torch::autograd::variable_list &grads,
                                                        const std::vector<c10::IValue> &args) {
    torch::dynamo::autograd::PackedArgs packed(args);
    at::Tensor x = packed.unpack<at::Tensor>();
    double slope = packed.unpack<double>();
    std::string backend = packed.unpack<std::string>();
    if (!grads[0].defined()) return {at::Tensor()};
    auto [g, xs] = as_one(grads[0], x);
    return {backward_op(g, xs, slope, backend)};
  }
};

// LeakyReLU of ``x`` into ``out``, with its autograd node; false (nothing
// done) where ``x`` is not the plain case.
bool forward(const at::Tensor &x, double slope, std::string backend, at::Tensor &out) {
  if (tensor_call == nullptr) throw std::runtime_error("fastleaky's node is not bound to its loops");
  if (!plain(x) || x._fw_grad(/*level=*/0).defined() || !direct()) return false;
  c10::intrusive_ptr<LeakyReluBackward> node;
  if (torch::autograd::compute_requires_grad(x)) {
    node = c10::make_intrusive<LeakyReluBackward>();
    node->set_next_edges(torch::autograd::collect_next_edges(x));
    node->x_ = torch::autograd::SavedVariable(x, /*is_output=*/false);
    node->slope_ = slope;
    node->backend_ = std::move(backend);
  }
  out = compute(op_forward, x, x, slope);
  if (node) torch::autograd::set_history(out, node);
  return true;
}

// LeakyReLU of ``x`` with its autograd node, or None where ``x`` is not the
// plain case (the caller then takes its own path).
pybind11::object leaky_relu(const at::Tensor &x, double slope, std::string backend) {
  try {
    at::Tensor out;
    if (!forward(x, slope, std::move(backend), out)) return pybind11::none();
    return pybind11::cast(std::move(out));
  } catch (python_error &e) {  // the loops' own exception, as it was raised
    e.restore();
    throw pybind11::error_already_set();
  }
}

// ---- the hot entry ---------------------------------------------------------
// fastleaky.torch.leaky_relu(input, negative_slope, backend) for the common
// call, decided here instead of in Python: the checks the Python function
// makes before it reaches the node cost more than the node itself, and
// their bytecode and objects are out of the cache after a large tensor's
// kernels.  It takes what needs none of Python's judgement -- exactly a
// torch.Tensor, a finite Python float (one that fits float32 unless the
// tensor is float64), backend "auto" where it means the loops -- and
// returns None for anything else, which the Python path then handles
// (raising its errors, or computing the same bits another way).  The caller
// checks inplace and torch.compile first.

// Bound from Python (``bind_gate``): fastleaky.use_backend's context
// variable, the registry's cache of fast entries and the loops' entry, so
// that "auto means the loops" is decided as fastleaky.torch decides it.
PyObject *backend_var = nullptr, *fast_entries = nullptr, *loops_entry = nullptr,
         *auto_name = nullptr;

bool is_auto(PyObject *backend) {
  return backend == auto_name ||
         (PyUnicode_CheckExact(backend) && PyUnicode_Compare(backend, auto_name) == 0);
}

// 1 where "auto" computes float32/float64 with the loops now (no
// use_backend in force, and the registry decided "auto" is the loops), 0
// where Python must decide, -1 with an exception set.
int auto_is_loops() {
  PyObject *current = nullptr;
  if (PyContextVar_Get(backend_var, Py_None, &current) < 0) return -1;
  const bool unset = current == Py_None;
  Py_DECREF(current);
  if (!unset) return 0;
  PyObject *entry = PyDict_GetItemWithError(fast_entries, auto_name);  // borrowed
  if (entry == nullptr) return PyErr_Occurred() ? -1 : 0;
  return entry == loops_entry ? 1 : 0;
}

PyObject *fast_leaky_relu(PyObject *, PyObject *const *args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "fast_leaky_relu takes (input, negative_slope, backend)");
    return nullptr;
  }
  PyObject *input = args[0], *slope = args[1], *backend = args[2];
  if (loops_entry == nullptr || Py_TYPE(input) != reinterpret_cast<PyTypeObject *>(THPVariableClass) ||
      !PyFloat_CheckExact(slope) || !is_auto(backend))
    Py_RETURN_NONE;
  const double a = PyFloat_AS_DOUBLE(slope);
  const at::Tensor &x = THPVariable_Unpack(input);
  if (!std::isfinite(a) || (x.scalar_type() != at::kDouble && std::fabs(a) > FLT_MAX))
    Py_RETURN_NONE;
  const int loops = auto_is_loops();
  if (loops < 0) return nullptr;
  if (loops == 0) Py_RETURN_NONE;
  at::Tensor out;
  if (!forward(x, a, "auto", out)) Py_RETURN_NONE;
  return THPVariable_Wrap(std::move(out));
  END_HANDLE_TH_ERRORS
}

PyMethodDef fast_leaky_relu_def = {
    "fast_leaky_relu", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(fast_leaky_relu)),
    METH_FASTCALL,
    "fast_leaky_relu(input, negative_slope, backend): LeakyReLU with its node for the common call, "
    "else None"};

void bind_backward(pybind11::function backward) {
  Py_XDECREF(python_backward);
  python_backward = backward.release().ptr();
}

void bind_gate(pybind11::object context_var, pybind11::dict fast, pybind11::object entry) {
  if (!PyContextVar_CheckExact(context_var.ptr()))
    throw pybind11::type_error("bind_gate needs use_backend's contextvars.ContextVar");
  if (entry.is_none()) throw pybind11::type_error("bind_gate needs the loops' entry");
  for (PyObject *old : {backend_var, fast_entries, loops_entry}) Py_XDECREF(old);
  backend_var = context_var.release().ptr();
  fast_entries = fast.release().ptr();
  loops_entry = entry.release().ptr();
  if (auto_name == nullptr) auto_name = PyUnicode_InternFromString("auto");
}

// The node's Python class, as torch gives its generated nodes one: a
// torch.autograd.graph.Node with the saved values as ``_saved_*``.
PyTypeObject node_type;

LeakyReluBackward &node_of(PyObject *self) {
  return static_cast<LeakyReluBackward &>(*reinterpret_cast<torch::autograd::THPCppFunction *>(self)->cdata);
}

PyObject *saved_self(PyObject *self, void *) {
  HANDLE_TH_ERRORS
  return THPVariable_Wrap(node_of(self).x_.unpack());
  END_HANDLE_TH_ERRORS
}

PyObject *saved_negative_slope(PyObject *self, void *) {
  HANDLE_TH_ERRORS
  return PyFloat_FromDouble(node_of(self).slope_);
  END_HANDLE_TH_ERRORS
}

using namespace torch::autograd;  // the names THP_FUNCTION_DEFAULT_* expand to

PyGetSetDef node_properties[] = {
    THP_FUNCTION_DEFAULT_PROPERTIES,
    {(char *)"_saved_self", saved_self, nullptr, nullptr, nullptr},
    {(char *)"_saved_negative_slope", saved_negative_slope, nullptr, nullptr, nullptr},
    {nullptr}};

// THP_FUNCTION_DEFAULT_METHODS but _set_sequence_nr, which torch's headers do not declare.
PyMethodDef node_methods[] = {
    {(char *)"_register_hook_dict", THPCppFunction_register_hook_dict, METH_O, nullptr},
    {(char *)"register_hook", THPCppFunction_register_hook, METH_O, nullptr},
    {(char *)"register_prehook", THPCppFunction_register_prehook, METH_O, nullptr},
    {(char *)"name", THPCppFunction_name, METH_NOARGS, nullptr},
    {(char *)"_sequence_nr", THPCppFunction_sequence_nr, METH_NOARGS, nullptr},
    {nullptr}};

void bind(pybind11::capsule loops, int forward, int backward, int f32, int f64) {
  tensor_call = reinterpret_cast<TensorCall>(
      PyCapsule_GetPointer(loops.ptr(), "fastleaky.tensor_call"));
  if (tensor_call == nullptr) throw pybind11::error_already_set();
  op_forward = forward;
  op_backward = backward;
  typenum_f32 = f32;
  typenum_f64 = f64;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fastleaky.torch's LeakyReLU autograd node in C++";
  torch::autograd::_initFunctionPyTypeObject(node_type, "LeakyReluBackward", node_properties,
                                             node_methods);
  torch::autograd::registerCppFunction(typeid(LeakyReluBackward), &node_type);
  Py_INCREF(&node_type);
  m.attr("LeakyReluBackward") = pybind11::reinterpret_borrow<pybind11::object>(
      reinterpret_cast<PyObject *>(&node_type));
  m.def("bind", &bind, "Hand over the loops' entry and the operation and type numbers");
  m.def("leaky_relu", &leaky_relu, "LeakyReLU with its autograd node, or None",
        pybind11::arg("x"), pybind11::arg("slope"), pybind11::arg("backend"));
  m.def("bind_backward", &bind_backward,
        "Hand over fastleaky.torch's differentiable backward (g, x, slope, backend)",
        pybind11::arg("backward"));
  m.def("bind_gate", &bind_gate,
        "Hand over use_backend's context variable, the registry's fast entries and the loops' entry",
        pybind11::arg("context_var"), pybind11::arg("fast"), pybind11::arg("entry"));
  m.add_object("fast_leaky_relu", pybind11::reinterpret_steal<pybind11::object>(
                                      PyCFunction_NewEx(&fast_leaky_relu_def, nullptr,
                                                        m.attr("__name__").ptr())));
}
