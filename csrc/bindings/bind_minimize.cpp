// gdcore._core.descend: gd.minimize / gd.minimize_many over a compiled objective. Glue only:
// the memory-safety checks of checks.hpp with the GIL held (which objective, the prototype and
// the hyper-parameters' ranges are the Python layer's: python/gdcore/_compiled.py and
// minimize.py), the descents under gil_scoped_release, the algorithm in csrc/gd/descent.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../gd/descent.hpp"
#include "checks.hpp"

namespace py = pybind11;
using checks::ErrorCode;

namespace {

// The interrupt hook: take the GIL briefly and run Python's signal handlers; the handler's
// exception (KeyboardInterrupt on Ctrl-C) stays set and is raised when the descent returns.
bool poll_python_signals(void*) {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
}

// An address given as a Python int (0 allowed only when `allow_null`).
std::uintptr_t address_of(py::handle obj, const char* name, bool allow_null) {
    if (PyBool_Check(obj.ptr()) || !PyLong_Check(obj.ptr()))
        checks::fail(ErrorCode::type, std::string(name) + " must be an int (an address), got " +
                                          checks::type_name(obj));
    const unsigned long long v = PyLong_AsUnsignedLongLong(obj.ptr());
    if (PyErr_Occurred()) {
        PyErr_Clear();
        checks::fail(ErrorCode::index, std::string(name) + " is not an address");
    }
    if (v == 0 && !allow_null)
        checks::fail(ErrorCode::index, std::string(name) + " must not be NULL");
    if (v > UINTPTR_MAX) checks::fail(ErrorCode::index, std::string(name) + " is not an address");
    return static_cast<std::uintptr_t>(v);
}

// A std::vector's storage as a NumPy array of shape (rows, cols), without a copy.
py::array_t<double> to_array(std::vector<double>&& values, py::ssize_t rows, py::ssize_t cols) {
    auto* owned = new std::vector<double>(std::move(values));
    py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<double>*>(p); });
    return py::array_t<double>({rows, cols}, owned->data(), owner);
}

// One descent per learning rate in lrs, from x0. Returns a list of tuples
// (status, nit, fun, grad_norm, limit, unfilled, x, path).
py::list descend(const py::object& function, const py::object& data, const py::object& x0,
                 const py::object& lrs, double momentum, const py::object& max_iter, double tol) {
    const auto fun = reinterpret_cast<gd::ObjectiveFunction>(address_of(function, "function", false));
    void* const user = reinterpret_cast<void*>(address_of(data, "data", true));
    const py::array start = checks::array_of<double>(x0, "x0", 1, "(d,)");
    const py::array rates = checks::array_of<double>(lrs, "lrs", 1, "(k,)");
    if (start.shape(0) < 1) checks::fail(ErrorCode::shape, "x0 must not be empty");
    const long long steps = checks::integer(max_iter, "max_iter");
    if (steps < 0) checks::fail(ErrorCode::index, "max_iter must be >= 0");
    const int n = static_cast<int>(start.shape(0));
    const py::ssize_t k = rates.shape(0);
    const auto* x0p = static_cast<const double*>(start.data());
    const auto* lrp = static_cast<const double*>(rates.data());

    struct Run {
        gd::DescentResult result;
        std::vector<double> x, path;
    };
    std::vector<Run> runs;
    bool no_memory = false;
    {
        py::gil_scoped_release nogil;
        gd::Interrupt interrupt;
        interrupt.poll = &poll_python_signals;
        try {
            runs.resize(static_cast<std::size_t>(k));
            for (py::ssize_t i = 0; i < k; ++i) {
                Run& run = runs[static_cast<std::size_t>(i)];
                run.x.assign(x0p, x0p + n);
                gd::DescentConfig config;
                config.lr = lrp[i];
                config.momentum = momentum;
                config.max_iter = steps;
                config.tol = tol;
                run.result = gd::descend(fun, user, n, run.x.data(), config, run.path, interrupt);
                if (run.result.status == gd::DescentStatus::interrupted) break;
            }
        } catch (const std::bad_alloc&) {
            no_memory = true;
        }
    }
    if (no_memory) {
        runs.clear();
        PyErr_SetString(PyExc_MemoryError,
                        "not enough memory for the path of the descent (max_iter + 1 rows of "
                        "x0's size); lower max_iter");
        throw py::error_already_set();
    }
    for (const Run& run : runs)
        if (run.result.status == gd::DescentStatus::interrupted) {
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
            throw py::error_already_set();  // the signal handler's exception
        }
    py::list out;
    for (Run& run : runs) {
        const gd::DescentResult& r = run.result;
        const py::ssize_t rows = static_cast<py::ssize_t>(run.path.size()) / n;
        py::array_t<double> x(n);
        std::copy(run.x.begin(), run.x.end(), x.mutable_data());
        out.append(py::make_tuple(static_cast<int>(r.status), r.nit, r.fun, r.grad_norm, r.limit,
                                  r.unfilled, x, to_array(std::move(run.path), rows, n)));
    }
    return out;
}

}  // namespace

void bind_minimize(py::module_& m) {
    m.def("descend", &descend, py::arg("function"), py::arg("data"), py::arg("x0"),
          py::arg("lrs"), py::arg("momentum"), py::arg("max_iter"), py::arg("tol"),
          R"pbdoc(One heavy-ball descent per rate of lrs (float64, (k,)) from x0 (float64, (d,)) over
the C function at address `function`, double f(int n, const double* x, double* grad, void* data),
called with `data` (an address, 0 for NULL). Releases the GIL; checks for signals every few
hundred steps and raises e.g. KeyboardInterrupt. For gd.minimize, which checks the function's
prototype and the hyper-parameters: the address is trusted. Returns a list of
(status, nit, fun, grad_norm, limit, unfilled, x, path), status a DESCENT_STATUS code.)pbdoc");
}
