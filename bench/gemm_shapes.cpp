// GEMM per shape and kernel table (docs/design.md, "Kernel choice"): the own kernel
// (kernels::table().sgemm), OpenBLAS single-threaded plus the separate epilogue pass, and
// gdcore's dispatcher (blas::gemm: its choice and its chunks), interleaved round by round; the
// best round of each (the machine is shared: the least disturbed). Built and run by
// bench/gemm_shapes.sh:
//   bench/gemm_shapes.sh [small|medium|sweep|all] [rounds] [isa,isa,...]
// OpenBLAS picks its kernel by the CPU; OPENBLAS_CORETYPE=Haswell (AVX2) or Nehalem (SSE)
// compares a table with OpenBLAS's kernel for the same instruction set.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "blas.hpp"
#include "kernels.hpp"

using gd::index_t;
using Clock = std::chrono::steady_clock;

// C (m x n) = op(A) @ op(B), then the epilogue: 0 none, 1 + bias, 2 + bias and relu, 3 mask.
struct Shape {
    std::string name;
    bool ta, tb;
    index_t m, n, k;
    int ep;
};

std::vector<Shape> shapes_of(const std::string& which) {
    std::vector<Shape> s;
    if (which == "small" || which == "all")  // 64-128-10, batch 32 (bench/workloads.py)
        s.insert(s.end(), {{"F1 32x64@64x128 +b relu", false, false, 32, 128, 64, 2},
                           {"F2 32x128@128x10 +b", false, false, 32, 10, 128, 1},
                           {"dW2 128x32^T@32x10", true, false, 128, 10, 32, 0},
                           {"dA1 32x10@(128x10)^T mask", false, true, 32, 128, 10, 3},
                           {"dW1 64x32^T@32x128", true, false, 64, 128, 32, 0},
                           {"F1' 5x64@64x128 (last batch)", false, false, 5, 128, 64, 2}});
    if (which == "medium" || which == "all")  // 784-256-128-10, batch 128
        s.insert(s.end(), {{"mF1 128x784@784x256 +b relu", false, false, 128, 256, 784, 2},
                           {"mF2 128x256@256x128 +b relu", false, false, 128, 128, 256, 2},
                           {"mF3 128x128@128x10 +b", false, false, 128, 10, 128, 1},
                           {"mdW3 128x128^T@128x10", true, false, 128, 10, 128, 0},
                           {"mdA2 128x10@(128x10)^T mask", false, true, 128, 128, 10, 3},
                           {"mdW2 256x128^T@128x128", true, false, 256, 128, 128, 0},
                           {"mdA1 128x128@(256x128)^T mask", false, true, 128, 256, 128, 3},
                           {"mdW1 784x128^T@128x256", true, false, 784, 256, 128, 0}});
    if (which == "sweep" || which == "all")  // cubes: A @ B + bias, A^T @ B, A @ B^T + mask
        for (index_t d : {4, 8, 16, 24, 32, 48, 64, 96, 128}) {
            const std::string cube = std::to_string(d) + "^3 ";
            s.push_back({cube + "NN +b", false, false, d, d, d, 1});
            s.push_back({cube + "TN", true, false, d, d, d, 0});
            s.push_back({cube + "NT mask", false, true, d, d, d, 3});
        }
    return s;
}

int main(int argc, char** argv) {
    const std::string which = argc > 1 ? argv[1] : "small";
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 21;
    const std::string wanted = argc > 3 ? argv[3] : "x86-64,avx2,avx512,generic";
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    auto* work = static_cast<float*>(
        std::aligned_alloc(64, sizeof(float) * gd::kernels::gemm_work_elements));
    const int blas_threads = scipy_openblas_get_num_threads();  // gdcore's budget, put back
    int n_isas = 0;
    const char* const* isas = gd::kernels::supported_isas(&n_isas);
    for (int t = 0; t < n_isas; ++t) {
        if (wanted.find(isas[t]) == std::string::npos) continue;
        gd::kernels::set_isa(isas[t]);
        const gd::kernels::GemmFn<float> own = gd::kernels::table().sgemm;
        std::printf("== %s (OpenBLAS %s): best us per call of %d rounds (GFLOP/s)\n", isas[t],
                    gd::blas::corename(), rounds);
        for (const Shape& s : shapes_of(which)) {
            const index_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
            const gd::blas::Op op_a = s.ta ? gd::blas::Op::transpose : gd::blas::Op::none;
            const gd::blas::Op op_b = s.tb ? gd::blas::Op::transpose : gd::blas::Op::none;
            std::vector<float> A(s.m * s.k), B(s.k * s.n), bias(s.n), mask(s.m * s.n);
            std::vector<float> C(s.m * s.n), R;
            for (auto* v : {&A, &B, &bias, &mask})
                for (float& x : *v) x = normal(rng);
            gd::kernels::Epilogue<float> ep{};
            if (s.ep == 1 || s.ep == 2) ep.bias = bias.data();
            ep.relu = s.ep == 2;
            if (s.ep == 3) ep = {nullptr, false, mask.data(), s.n};
            const double macs = double(s.m) * double(s.n) * double(s.k);
            auto openblas = [&] {
                scipy_openblas_set_num_threads(1);
                scipy_cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans,
                                  s.tb ? CblasTrans : CblasNoTrans, blasint(s.m), blasint(s.n),
                                  blasint(s.k), 1.f, A.data(), blasint(lda), B.data(),
                                  blasint(ldb), 0.f, C.data(), blasint(s.n));
                scipy_openblas_set_num_threads(blas_threads);
                for (index_t i = 0; i < s.m; ++i) {  // blas.cpp's apply_epilogue
                    float* ci = C.data() + i * s.n;
                    if (ep.bias)
                        for (index_t j = 0; j < s.n; ++j) ci[j] += ep.bias[j];
                    if (ep.relu)
                        for (index_t j = 0; j < s.n; ++j) ci[j] = ci[j] < 0 ? 0 : ci[j];
                    if (ep.mask)
                        for (index_t j = 0; j < s.n; ++j)
                            ci[j] = ep.mask[i * ep.ldm + j] > 0 ? ci[j] : 0;
                }
            };
            std::vector<std::pair<std::string, std::function<void()>>> runs;
            const bool own_fits = s.k <= gd::kernels::max_depth &&
                                  (!s.tb || s.k * s.n <= gd::kernels::max_packed);
            if (own_fits)
                runs.push_back({"own", [&] {
                                    own(s.ta, s.tb, s.m, s.n, s.k, 1.f, A.data(), lda, B.data(),
                                        ldb, 0.f, C.data(), s.n, ep, work);
                                }});
            runs.push_back({"openblas", openblas});
            runs.push_back({"gdcore", [&] {
                                gd::blas::gemm(op_a, op_b, s.m, s.n, s.k, 1.f, A.data(), lda,
                                               B.data(), ldb, 0.f, C.data(), s.n, ep);
                            }});
            openblas();
            R = C;
            for (auto& run : runs) {  // every variant computes the same C
                std::fill(C.begin(), C.end(), 0.f);
                run.second();
                for (std::size_t q = 0; q < C.size(); ++q)
                    if (std::fabs(C[q] - R[q]) > 1e-4f * (1 + std::fabs(R[q]))) {
                        std::printf("MISMATCH %s %s at %zu\n", s.name.c_str(),
                                    run.first.c_str(), q);
                        return 1;
                    }
            }
            const int reps = std::max(1, int(2e6 / (macs + 2000)));  // ~1 ms a round
            std::vector<double> best(runs.size(), 1e30);
            for (int r = 0; r < rounds; ++r)
                for (std::size_t v = 0; v < runs.size(); ++v) {
                    const auto t0 = Clock::now();
                    for (int q = 0; q < reps; ++q) runs[v].second();
                    const std::chrono::duration<double, std::micro> dt = Clock::now() - t0;
                    best[v] = std::min(best[v], dt.count() / reps);
                }
            const gd::blas::ChunkPlan plan = gd::blas::chunk_plan(s.m, s.n, s.k);
            std::printf("%-30s %9.0f %-4s %d chunk(s) |", s.name.c_str(), macs,
                        gd::blas::use_own_kernel(op_a, op_b, s.m, s.n, s.k) ? "own" : "blas",
                        plan.chunks);
            for (std::size_t v = 0; v < runs.size(); ++v)
                std::printf(" %s %.2f (%.1f)", runs[v].first.c_str(), best[v],
                            2e-3 * macs / best[v]);
            std::printf("\n");
        }
    }
    std::free(work);
    return 0;
}
