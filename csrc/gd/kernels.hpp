// Own vectorised kernels, compiled once per instruction set (kernels_<isa>.cpp, by concern in
// kernels_table.hpp) and picked at run time for the CPU (x86-64: "x86-64", "avx2", "avx512"; any
// other CPU: "generic" only): a register-blocked GEMM for small products and column sums, and
// float32 exp / tanh / sigmoid / log1p(exp(-|x|)) (polynomial and rational approximations, a few
// ulp, in loops the compiler vectorises) and tanh's backward pass. The formulas built on them
// (activations, losses) live with their concerns; only the primitives are here.
#pragma once

#include "codes.hpp"

namespace gd::kernels {

// What a GEMM does to each element of C = alpha op(A) op(B) + beta C before storing it, in
// this order: + bias[j]; max(., 0) if relu (NaN stays NaN); 0 where mask[i * ldm + j] <= 0
// (relu's backward dZ = dA * (A > 0), with mask = A).
template <class T>
struct Epilogue {
    const T* bias = nullptr;
    bool relu = false;
    const T* mask = nullptr;
    index_t ldm = 0;
};

// C (m x n, row stride ldc) = alpha * op(A) @ op(B) + beta * C, then the epilogue, row-major,
// as blas::gemm. beta == 0 overwrites C. Requires k <= max_depth and, when B is transposed,
// k * n <= max_packed (op(B) is packed into work). Not Op::transpose for both operands.
// work: gemm_work_elements elements, 64-byte aligned, for the packed and transposed blocks.
// (Scratch lives on the heap, not the stack: a thread may have as little as 64 KiB of stack.)
template <class T>
using GemmFn = void (*)(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                        const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c,
                        index_t ldc, Epilogue<T> epilogue, T* work);
inline constexpr index_t max_depth = 512;
inline constexpr index_t max_packed = 4096;
// work's regions: [0, max_packed) op(B) packed, or one column of B made contiguous;
// [max_packed, 2 max_packed) the transposed product of narrow C; then the zero-padded last rows
// of a column tail (at most (lanes + 1) x lanes <= 17 x 16 elements).
inline constexpr index_t gemm_work_tail = 2 * max_packed;
inline constexpr index_t gemm_work_elements = 2 * max_packed + 17 * 16;

// Up to how many multiply-adds a kernel table's GEMM is used rather than OpenBLAS (Table).
struct GemmLimits {
    index_t wide;         // both operands as stored and C at least 32 columns wide (A @ W + b)
    index_t transpose_a;  // A transposed, B as stored (the weight gradient A^T @ dZ)
    index_t other;        // B transposed (dZ @ W^T), or both as stored with narrower C
};

// Networks per lane group of train_epoch_many (train_lanes.hpp): a lane vector of 64 bytes of
// T, or of 32 (half as many lanes: two groups on two cores).
template <class T>
inline constexpr index_t lane_count = index_t(64 / sizeof(T));

// What a lane product applies to C's rows as it finishes them, while they are in cache,
// instead of another pass over C: float32 tanh (the table's tanh_f32), or tanh's backward
// C = C (1 - a a) with a = tanh_of (laid out as C; the table's tanh_backward_f32). Only for
// a C whose rows are contiguous (ldc == n); float64 products take neither.
template <class T>
struct LaneRows {
    bool tanh = false;
    const T* tanh_of = nullptr;
};

// The same product for the G networks of a lane group at once (kernels_lanes.hpp): every matrix
// stored lane-major (element e of network l at e * G + l; A may instead be one matrix shared by
// all lanes: a_shared), the epilogue's arrays too; alpha 1, beta 0. Each lane is exactly the
// table's GemmFn of that network's matrices with leading dimensions lda, ldb, ldc.
template <class T>
using LaneGemmFn = void (*)(bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                            const T* a, index_t lda, bool a_shared, const T* b, index_t ldb,
                            T* c, index_t ldc, Epilogue<T> epilogue, LaneRows<T> rows);

// y[i] = f(x[i]) for i < size; y may equal x.
using MapFn = void (*)(const float* x, float* y, index_t size);

// One instruction set's kernels. (Each kernels_<isa>.cpp keeps every function internal: no
// inline function shared with the rest of the library is compiled for a wider ISA.)
struct Table {
    const char* isa;
    GemmFn<float> sgemm;
    GemmFn<double> dgemm;
    MapFn exp_f32;      // exp, ~1 ulp; exp(x) = 0 below -87.3, inf above 88.7, NaN stays NaN
    MapFn tanh_f32;     // tanh, a few ulp
    MapFn sigmoid_f32;  // 1 / (1 + exp(-z)), from exp(-|z|) as gd::sigmoid
    MapFn softplus_neg_abs_f32;  // log1p(exp(-|x|)), a few ulp: the bce loss's term (losses.cpp)
    // s[j] = sum_r x[r, j] of a rows x cols block, rows added in order (as NumPy's sum(axis=0)).
    void (*column_sums_f32)(const float* x, index_t rows, index_t cols, float* s);
    void (*column_sums_f64)(const double* x, index_t rows, index_t cols, double* s);
    // One SGD step on float32: the optimizer's own pass (sgd_pass.hpp), compiled per
    // instruction set here; buf null without momentum.
    void (*sgd_f32)(float* p, const float* g, float* buf, index_t size, float lr,
                    float momentum, bool nesterov, float weight_decay);
    // dz = da * (1 - a * a): tanh's backward from its output a (activations.cpp). dz may
    // equal da.
    void (*tanh_backward_f32)(const float* a, const float* da, float* dz, index_t size);
    // The largest products (multiply-adds m * n * k) for which sgemm/dgemm beat OpenBLAS's
    // kernel for the same instruction set, by operand layout (blas::use_own_kernel; the
    // figures in kernels_<isa>.cpp and docs/design.md, "Kernel choice").
    GemmLimits own_gemm;
    // The lane products and column sums of train_epoch_many's lane groups (LaneGemmFn), for
    // groups of lane_count / 2 lanes ([0]) and of lane_count ([1]).
    LaneGemmFn<float> lane_sgemm[2];
    LaneGemmFn<double> lane_dgemm[2];
    void (*lane_column_sums_f32[2])(const float* x, index_t rows, index_t cols, float* s);
    void (*lane_column_sums_f64[2])(const double* x, index_t rows, index_t cols, double* s);
    // sgd_f32 over lane arrays, each lane with its own lr, momentum and weight decay
    // (sgd_pass.hpp's sgd_lane_update: every lane equals sgd_f32 on its own values).
    void (*lane_sgd_f32[2])(float* p, const float* g, float* buf, index_t elements,
                            const float* lr, const float* momentum, const float* weight_decay,
                            bool nesterov, bool decay);
};

// The kernels in use: the best the CPU supports, unless set_isa chose others.
const Table& table() noexcept;
// Use the kernels of `isa` ("x86-64", "avx2", "avx512" on x86-64, "generic" elsewhere, or "auto"
// for the best): false if the name is unknown or the CPU lacks it. Process-wide; for tests and benchmarks.
bool set_isa(const char* isa) noexcept;
// The instruction sets this CPU can run, best last.
const char* const* supported_isas(int* count) noexcept;

// kernels_x86_64.cpp, kernels_avx2.cpp, kernels_avx512.cpp (x86-64 builds only).
namespace isa_x86_64 { const Table& table() noexcept; }
namespace isa_avx2 { const Table& table() noexcept; }
namespace isa_avx512 { const Table& table() noexcept; }
// kernels_generic.cpp (every other build).
namespace isa_generic { const Table& table() noexcept; }

}  // namespace gd::kernels
