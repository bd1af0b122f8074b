// gdcore._core: the pybind11 module. Glue only; the algorithms live in csrc/gd/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "../gd/blas.hpp"
#include "../gd/dropout.hpp"
#include "../gd/finite.hpp"
#include "../gd/kernels.hpp"
#include "../gd/threads.hpp"
#include "../gd/train_lanes.hpp"

namespace py = pybind11;

#ifndef GDCORE_VERSION
#define GDCORE_VERSION "unknown"
#endif
#ifndef GDCORE_CXX_FLAGS
#define GDCORE_CXX_FLAGS ""
#endif
#ifndef GDCORE_KERNELS_FLAGS
#define GDCORE_KERNELS_FLAGS ""
#endif

namespace {

// GDCORE_KERNELS_FLAGS, "isa: flags|isa: flags" (CMakeLists.txt), as {isa: flags}.
py::dict kernels_flags() {
    py::dict out;
    const std::string all = GDCORE_KERNELS_FLAGS;
    std::size_t start = 0;
    while (start < all.size()) {
        std::size_t end = all.find('|', start);
        if (end == std::string::npos) end = all.size();
        const std::string entry = all.substr(start, end - start);
        const std::size_t colon = entry.find(": ");
        if (colon != std::string::npos) out[py::str(entry.substr(0, colon))] = entry.substr(colon + 2);
        start = end + 1;
    }
    return out;
}

}  // namespace

void bind_engine(py::module_& m);  // bind_engine.cpp: EngineF32, EngineF64
void bind_minimize(py::module_& m);  // bind_minimize.cpp: descend
void bind_capi(py::module_& m);    // bind_capi.cpp: _C_API, the capsule of gdcore/capi.h

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
        // The flags of the C++ core (csrc/gd), and what each kernels_<isa>.cpp adds to them.
        info["cxx_flags"] = GDCORE_CXX_FLAGS;
        info["kernels_cxx_flags"] = kernels_flags();
        info["cxx_standard"] = static_cast<long>(__cplusplus);
        info["blas"] = "scipy-openblas32";
        info["blas_config"] = gd::blas::config();
        info["blas_corename"] = gd::blas::corename();
        info["blas_num_threads"] = gd::blas::get_num_threads();
        info["small_gemm_limit"] = static_cast<long>(gd::blas::small_gemm_limit);
        info["split_gemm_limit"] = static_cast<long>(gd::blas::split_gemm_limit);
        info["helper_threads"] = gd::threads::pool_size();
        info["kernels_isa"] = gd::kernels::table().isa;
        // Up to how many multiply-adds the kernels in use take a product rather than OpenBLAS.
        const gd::kernels::GemmLimits& own = gd::kernels::table().own_gemm;
        py::dict limits;
        limits["wide"] = static_cast<long>(own.wide);
        limits["transpose_a"] = static_cast<long>(own.transpose_a);
        limits["other"] = static_cast<long>(own.other);
        info["own_gemm_limits"] = limits;
        return info;
    }, R"pbdoc(Compiler, flags, version and BLAS (configuration, CPU kernel, threads) of the build.)pbdoc");

    m.def("set_num_threads", [](py::object n) {
        if (PyBool_Check(n.ptr()) || !PyIndex_Check(n.ptr()))
            throw py::type_error("n must be an int");
        const long long v = n.cast<long long>();
        if (v < 1 || v > 1 << 16) throw py::value_error("n must be a positive number of threads, got " +
                                                        std::to_string(v));
        gd::blas::set_num_threads(static_cast<int>(v));
    }, py::arg("n"), R"pbdoc(Set the number of threads the core and its OpenBLAS use (process-wide).)pbdoc");

    m.def("get_num_threads", [] { return gd::blas::get_num_threads(); },
          R"pbdoc(The number of threads the core and its OpenBLAS use.)pbdoc");

    m.def("all_finite", [](const py::array& a) {
        if (!(a.flags() & py::array::c_style))
            throw py::type_error("all_finite needs a C-contiguous array");
        const auto n = static_cast<gd::index_t>(a.size());
        if (py::isinstance<py::array_t<float>>(a))
            return gd::all_finite(static_cast<const float*>(a.data()), n);
        if (py::isinstance<py::array_t<double>>(a))
            return gd::all_finite(static_cast<const double*>(a.data()), n);
        throw py::type_error("all_finite needs a float32 or float64 array");
    }, py::arg("a"), R"pbdoc(Whether every value of a C-contiguous float32/float64 array is finite.

One vectorised pass with no temporary: the public layer's check of user inputs.)pbdoc");

    m.def("dropout_mask", [](std::uint64_t seed, std::int64_t step, std::int64_t layer,
                             double rate, gd::index_t rows, gd::index_t cols,
                             const py::object& dtype) -> py::array {
        if (rows < 0 || cols < 0) throw py::value_error("rows and cols must be >= 0");
        const py::dtype dt = py::dtype::from_args(dtype);
        if (dt.equal(py::dtype::of<float>())) {
            py::array_t<float> mask({rows, cols});
            gd::dropout_mask(seed, step, layer, rate, rows, cols, mask.mutable_data());
            return mask;
        }
        if (!dt.equal(py::dtype::of<double>()))
            throw py::type_error("dtype must be float32 or float64");
        py::array_t<double> mask({rows, cols});
        gd::dropout_mask(seed, step, layer, rate, rows, cols, mask.mutable_data());
        return mask;
    }, py::arg("seed"), py::arg("step"), py::arg("layer"), py::arg("rate"), py::arg("rows"),
       py::arg("cols"), py::arg("dtype") = "float64",
       R"pbdoc(The dropout mask (rows, cols) of (seed, step, layer) at `rate` (gd::dropout_mask):
1 / (1 - rate) where the element is kept, else 0. For tests; rate is unchecked (in [0, 1)).)pbdoc");

    m.def("_kernel_isas", [] {
        int count = 0;
        const char* const* names = gd::kernels::supported_isas(&count);
        py::list out;
        for (int i = 0; i < count; ++i) out.append(names[i]);
        return out;
    }, R"pbdoc(The instruction sets of the own kernels this CPU can run, best last (for tests).)pbdoc");
    m.def("_set_kernel_isa", [](const std::string& isa) {
        if (!gd::kernels::set_isa(isa.c_str()))
            throw py::value_error("unknown or unsupported kernel instruction set '" + isa + "'");
    }, py::arg("isa"), R"pbdoc(Use the own kernels of `isa` ("x86-64", "avx2", "avx512" or "auto"),
process-wide. For tests and benchmarks: every engine call afterwards uses them.)pbdoc");

    m.def("_split_counts", [] {
        const gd::blas::SplitCounts c = gd::blas::split_counts();
        py::dict out;
        out["split"] = c.split;
        out["solo"] = c.solo;
        out["joined"] = c.joined;
        out["contended"] = c.contended;
        return out;
    }, R"pbdoc(How gdcore's split products went since the process started (blas.hpp,
split_counts): split, solo (run alone while the other cores counted as busy), joined (a helper
took a chunk), contended (a helper was late). For benchmarks; approximate.)pbdoc");

    m.def("_lane_epochs", [] { return gd::lane_epochs(); },
          R"pbdoc(Network epochs train_epoch_many ran in lane groups since the process started
(train_lanes.hpp). For tests and benchmarks.)pbdoc");

    bind_engine(m);
    bind_minimize(m);
    bind_capi(m);

    // Fill OpenBLAS's buffer pool now, while memory is plentiful (blas.hpp): its allocation
    // failing later would end the process.
    gd::blas::warm_up();
    gd::blas::prepare_helpers();
}
