// gdcore._core: the pybind11 module. Glue only; the algorithms live in csrc/gd/.
#include <pybind11/pybind11.h>

#include "../gd/blas.hpp"

namespace py = pybind11;

#ifndef GDCORE_VERSION
#define GDCORE_VERSION "unknown"
#endif
#ifndef GDCORE_CXX_FLAGS
#define GDCORE_CXX_FLAGS ""
#endif

void bind_engine(py::module_& m);  // bind_engine.cpp: EngineF32, EngineF64

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
        info["blas"] = "scipy-openblas32";
        info["blas_config"] = gd::blas::config();
        info["blas_corename"] = gd::blas::corename();
        info["blas_num_threads"] = gd::blas::get_num_threads();
        info["small_gemm_limit"] = static_cast<long>(gd::blas::small_gemm_limit);
        return info;
    }, R"pbdoc(Compiler, flags, version and BLAS (configuration, CPU kernel, threads) of the build.)pbdoc");

    m.def("set_num_threads", [](py::object n) {
        if (PyBool_Check(n.ptr()) || !PyIndex_Check(n.ptr()))
            throw py::type_error("n must be an int");
        const long long v = n.cast<long long>();
        if (v < 1 || v > 1 << 16) throw py::value_error("n must be a positive number of threads, got " +
                                                        std::to_string(v));
        gd::blas::set_num_threads(static_cast<int>(v));
    }, py::arg("n"), R"pbdoc(Set the number of threads the core's OpenBLAS uses (process-wide).)pbdoc");

    m.def("get_num_threads", [] { return gd::blas::get_num_threads(); },
          R"pbdoc(The number of threads the core's OpenBLAS uses.)pbdoc");

    bind_engine(m);
}
