// The C API of gdcore/capi.h: handles on compiled-engine networks, and the function table
// exported as the capsule gdcore._core._C_API. Glue only: the forward pass is the engine's
// (engine_capi.hpp). Nothing thrown crosses the C boundary: acquire turns errors into Python
// exceptions, the forwards into GD_ codes.
#include <pybind11/pybind11.h>

#include <exception>
#include <new>
#include <string>

#include "engine_capi.hpp"
#include "gdcore/capi.h"

namespace py = pybind11;

namespace {

// A handle: the public head (the table) first, then what the calls need. Strong references to
// the object passed to gd_acquire and to its engine (the network may later switch to another
// engine; the handle keeps computing with this one, over the same parameter arrays).
struct Handle {
    gd_network head;
    PyObject* owner;
    PyObject* engine;
    engine_capi::Ref ref;
};

const gd_capi_table& table();

Handle* handle_of(gd_network* h) noexcept { return reinterpret_cast<Handle*>(h); }
const Handle* handle_of(const gd_network* h) noexcept {
    return reinterpret_cast<const Handle*>(h);
}

// The network of `net` (a gdcore.Network, or the one inside a gdcore.Perceptron) and its
// compiled engine; TypeError for anything else.
py::object compiled_engine(const py::handle& net, engine_capi::Ref* ref) {
    const py::module_ network = py::module_::import("gdcore.network");
    py::object target = py::reinterpret_borrow<py::object>(net);
    if (py::isinstance(net, network.attr("Perceptron"))) {
        target = net.attr("network");
    } else if (!py::isinstance(net, network.attr("Network"))) {
        throw py::type_error("gd_acquire needs a gdcore.Network or gdcore.Perceptron, got " +
                             std::string(py::str(py::type::handle_of(net).attr("__name__"))));
    }
    py::object engine = target.attr("_engine");
    if (!engine_capi::lookup(engine.ptr(), ref)) {
        throw py::type_error(
            "gd_acquire needs a network computing in the compiled engine (backend 'cpp'), got "
            "one with backend " + std::string(py::repr(target.attr("_backend"))) +
            " (GDCORE_BACKEND, gdcore.set_backend)");
    }
    return engine;
}

gd_network* acquire(PyObject* net) {
    try {
        engine_capi::Ref ref;
        py::object engine = compiled_engine(py::handle(net), &ref);
        auto* h = new Handle{{&table()}, net, engine.ptr(), ref};
        Py_INCREF(net);
        engine.release();  // the handle's reference now
        return &h->head;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const py::builtin_exception& e) {
        e.set_error();
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "gd_acquire: unknown C++ exception");
    }
    return nullptr;
}

void release(gd_network* h) {
    Handle* handle = handle_of(h);
    if (Py_IsInitialized()) {  // (after finalisation the references are gone with Python)
        const PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(handle->engine);
        Py_DECREF(handle->owner);
        PyGILState_Release(gil);
    }
    delete handle;
}

Py_ssize_t n_inputs(const gd_network* h) { return handle_of(h)->ref.n_inputs; }
Py_ssize_t n_outputs(const gd_network* h) { return handle_of(h)->ref.n_outputs; }
int itemsize(const gd_network* h) { return handle_of(h)->ref.itemsize; }

// The checks of both forwards, in the order of the codes' documentation.
template <class T>
int check_call(const Handle* h, const T* x, Py_ssize_t n_rows, const T* out) noexcept {
    if (h->ref.itemsize != int(sizeof(T))) return GD_ERR_DTYPE;
    if (n_rows < 0) return GD_ERR_N_ROWS;
    if (n_rows > 0 && (x == nullptr || out == nullptr)) return GD_ERR_NULL_POINTER;
    return GD_OK;
}

int forward_f32(gd_network* h, const float* x, Py_ssize_t n_rows, float* out) {
    const Handle* handle = handle_of(h);
    const int rc = check_call(handle, x, n_rows, out);
    return rc != GD_OK ? rc : engine_capi::forward_f32(handle->ref.engine, x, n_rows, out);
}

int forward_f64(gd_network* h, const double* x, Py_ssize_t n_rows, double* out) {
    const Handle* handle = handle_of(h);
    const int rc = check_call(handle, x, n_rows, out);
    return rc != GD_OK ? rc : engine_capi::forward_f64(handle->ref.engine, x, n_rows, out);
}

const gd_capi_table& table() {
    static const gd_capi_table t = {
        GD_CAPI_VERSION, unsigned(sizeof(gd_capi_table)),
        &acquire, &release, &n_inputs, &n_outputs, &itemsize, &forward_f32, &forward_f64,
    };
    return t;
}

}  // namespace

void bind_capi(py::module_& m) {
    m.attr("_C_API") = py::capsule(static_cast<const void*>(&table()), GD_CAPI_CAPSULE);
}
