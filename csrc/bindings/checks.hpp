// Boundary validation for the bindings: everything Python hands the engine is checked here,
// with the GIL held, before any pointer is taken. Wrong type, dtype or memory layout ->
// TypeError (the Python layer converts); wrong shape, value or a read-only buffer -> ValueError.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace checks {

namespace py = pybind11;
using index_t = std::ptrdiff_t;

template <class T> constexpr const char* dtype_name();
template <> constexpr const char* dtype_name<float>() { return "float32"; }
template <> constexpr const char* dtype_name<double>() { return "float64"; }
template <> constexpr const char* dtype_name<std::int64_t>() { return "int64"; }

// "(3, 4)"
inline std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s += ", ";
        s += std::to_string(a.shape(i));
    }
    return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string type_name(py::handle obj) {
    return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

inline std::string dtype_of(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// The array in `obj`: a numpy.ndarray of dtype exactly D, `ndim`-dimensional, C-contiguous and
// aligned, writeable if asked. `expected` describes the shape for messages, e.g. "(n, 64)".
template <class D>
py::array array_of(py::handle obj, const std::string& name, int ndim, const std::string& expected,
                   bool writeable = false) {
    const std::string want = std::string(dtype_name<D>()) + " array of shape " + expected;
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(name + " must be a numpy.ndarray (" + want + "), got " +
                             type_name(obj));
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<D, 0>>(obj))
        throw py::type_error(name + " must be a " + want + ", got dtype " + dtype_of(a) +
                             " (the engine does not convert dtypes)");
    if (a.ndim() != ndim)
        throw py::value_error(name + " must be a " + want + ", got shape " + shape_of(a));
    const int flags = a.flags();
    if (!(flags & py::array::c_style))
        throw py::type_error(name + " must be C-contiguous (numpy.ascontiguousarray), got strides "
                             "of a non-contiguous view");
    if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::type_error(name + " must be an aligned array");
    if (writeable && !a.writeable()) throw py::value_error(name + " must be writeable");
    for (py::ssize_t i = 0; i < ndim; ++i)
        if (a.shape(i) > INT_MAX)
            throw py::value_error(name + " is too large: dimension " + std::to_string(i) +
                                  " exceeds " + std::to_string(INT_MAX));
    return a;
}

// Shape check of one axis: ValueError naming the argument and the expected shape.
inline void dim(const py::array& a, int axis, index_t value, const std::string& name,
                const std::string& expected) {
    if (a.shape(axis) != value)
        throw py::value_error(name + " must have shape " + expected + ", got " + shape_of(a));
}

// A Python int (or NumPy integer), not a bool.
inline long long integer(py::handle obj, const std::string& name) {
    if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
        throw py::type_error(name + " must be an int, got " + type_name(obj));
    const auto index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
    if (!index) throw py::error_already_set();
    const long long v = PyLong_AsLongLong(index.ptr());
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error(name + " is out of range");
    }
    return v;
}

// The items of a list or tuple (new references: the list may change, the items stay alive).
inline std::vector<py::object> items(py::handle obj, const std::string& name) {
    if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
        throw py::type_error(name + " must be a list, got " + type_name(obj));
    std::vector<py::object> out;
    for (py::handle h : py::reinterpret_borrow<py::sequence>(obj))
        out.push_back(py::reinterpret_borrow<py::object>(h));
    return out;
}

inline std::string item(const std::string& name, std::size_t i) {
    return name + "[" + std::to_string(i) + "]";
}

}  // namespace checks
