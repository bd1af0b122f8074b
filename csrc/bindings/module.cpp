// gdcore._core: the pybind11 module. Glue only; the algorithms live in csrc/gd/.
#include <pybind11/pybind11.h>

namespace py = pybind11;

#ifndef GDCORE_VERSION
#define GDCORE_VERSION "unknown"
#endif
#ifndef GDCORE_CXX_FLAGS
#define GDCORE_CXX_FLAGS ""
#endif

PYBIND11_MODULE(_core, m) {
    m.doc() = R"pbdoc(gdcore's compiled core (C++17, pybind11, OpenBLAS).)pbdoc";

    m.def("build_info", [] {
        py::dict info;
        info["version"] = GDCORE_VERSION;
#if defined(__clang__)
        info["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
        info["compiler"] = "gcc " __VERSION__;
#else
        info["compiler"] = "unknown";
#endif
        info["cxx_flags"] = GDCORE_CXX_FLAGS;
        info["cxx_standard"] = static_cast<long>(__cplusplus);
        return info;
    }, R"pbdoc(Compiler, flags and version the extension was built with.)pbdoc");
}
