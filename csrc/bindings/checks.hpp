// The bindings' checks: only what keeps the engine's memory accesses in bounds (the type,
// dtype, dimensions, layout and alignment of every array, the range of every index and code).
// User-facing checks of values (finite, non-negative, a valid hyper-parameter) live in the
// Python layer's gdcore/_validation.py. Each failure raises TypeError or ValueError with a
// stable `code` attribute (ErrorCode below; docs/design.md lists them), the same codes the
// NumPy reference engine uses. Called with the GIL held, before any pointer is taken.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

namespace checks {

namespace py = pybind11;
using index_t = std::ptrdiff_t;

// The stable codes of the bindings' errors, and the exception each raises.
enum class ErrorCode {
    type,       // TypeError: not an ndarray, a list or an int where one is needed
    dtype,      // TypeError: an ndarray of another dtype (the engine never converts)
    layout,     // TypeError: not C-contiguous, or not aligned to its element size
    shape,      // ValueError: wrong number of dimensions, a wrong or too large dimension
    readonly,   // ValueError: an array the engine writes is read-only
    index,      // ValueError: an index, class label or code out of its range
    structure,  // ValueError: layers that do not chain, or a loss that does not fit the output
};

inline const char* code_name(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::type: return "type";
        case ErrorCode::dtype: return "dtype";
        case ErrorCode::layout: return "layout";
        case ErrorCode::shape: return "shape";
        case ErrorCode::readonly: return "readonly";
        case ErrorCode::index: return "index";
        case ErrorCode::structure: return "structure";
    }
    return "?";
}

// Raise the error of `code` with `message`, its `code` attribute set.
[[noreturn]] inline void fail(ErrorCode code, const std::string& message) {
    const bool type_error =
        code == ErrorCode::type || code == ErrorCode::dtype || code == ErrorCode::layout;
    PyObject* kind = type_error ? PyExc_TypeError : PyExc_ValueError;
    py::object error = py::reinterpret_borrow<py::object>(kind)(message);
    error.attr("code") = code_name(code);
    PyErr_SetObject(kind, error.ptr());
    throw py::error_already_set();
}

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

// Every element of a C-contiguous array is aligned when its first one is.
template <class D>
bool aligned(const py::array& a) noexcept {
    return reinterpret_cast<std::uintptr_t>(a.data()) % alignof(D) == 0;
}

// The array in `obj`: a numpy.ndarray of dtype exactly D, `ndim`-dimensional, C-contiguous and
// aligned, writeable if asked. `expected` describes the shape for messages, e.g. "(n, 64)".
template <class D>
py::array array_of(py::handle obj, const std::string& name, int ndim, const std::string& expected,
                   bool writeable = false) {
    const std::string want = std::string(dtype_name<D>()) + " array of shape " + expected;
    if (!py::isinstance<py::array>(obj))
        fail(ErrorCode::type,
             name + " must be a numpy.ndarray (" + want + "), got " + type_name(obj));
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<D, 0>>(obj))
        fail(ErrorCode::dtype, name + " must be a " + want + ", got dtype " + dtype_of(a) +
                                   " (the engine does not convert dtypes)");
    if (a.ndim() != ndim)
        fail(ErrorCode::shape, name + " must be a " + want + ", got shape " + shape_of(a));
    if (!(a.flags() & py::array::c_style))
        fail(ErrorCode::layout, name + " must be C-contiguous (numpy.ascontiguousarray), got "
                                       "strides of a non-contiguous view");
    if (!aligned<D>(a)) fail(ErrorCode::layout, name + " must be an aligned array");
    if (writeable && !a.writeable()) fail(ErrorCode::readonly, name + " must be writeable");
    for (py::ssize_t i = 0; i < ndim; ++i)
        if (a.shape(i) > INT_MAX)
            fail(ErrorCode::shape, name + " is too large: dimension " + std::to_string(i) +
                                       " exceeds " + std::to_string(INT_MAX));
    return a;
}

// Shape check of one axis: a shape error naming the argument and the expected shape.
inline void dim(const py::array& a, int axis, index_t value, const std::string& name,
                const std::string& expected) {
    if (a.shape(axis) != value)
        fail(ErrorCode::shape, name + " must have shape " + expected + ", got " + shape_of(a));
}

// A Python int (or NumPy integer), not a bool.
inline long long integer(py::handle obj, const std::string& name) {
    if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
        fail(ErrorCode::type, name + " must be an int, got " + type_name(obj));
    const auto index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
    if (!index) throw py::error_already_set();
    const long long v = PyLong_AsLongLong(index.ptr());
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        fail(ErrorCode::index, name + " is out of range");
    }
    return v;
}

// An integer code in [0, count): `what` names its kind for the message ("a loss code").
inline int code_in(py::handle obj, const std::string& name, const char* what, int count) {
    const long long v = integer(obj, name);
    if (v < 0 || v >= count)
        fail(ErrorCode::index, name + " must be " + what + " in [0, " + std::to_string(count) +
                                   "), got " + std::to_string(v));
    return int(v);
}

// The items of a list or tuple (new references: the list may change, the items stay alive).
inline std::vector<py::object> items(py::handle obj, const std::string& name) {
    if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
        fail(ErrorCode::type, name + " must be a list, got " + type_name(obj));
    std::vector<py::object> out;
    for (py::handle h : py::reinterpret_borrow<py::sequence>(obj))
        out.push_back(py::reinterpret_borrow<py::object>(h));
    return out;
}

inline std::string item(const std::string& name, std::size_t i) {
    return name + "[" + std::to_string(i) + "]";
}

}  // namespace checks
