// The GEMM wrapper: row-major C = alpha * op(A) @ op(B) + beta * C over OpenBLAS, with a seam for
// small shapes (an own kernel, where a BLAS call costs more than the arithmetic).
#pragma once

#include <cstddef>

#include "codes.hpp"
#include "interrupt.hpp"
#include "kernels.hpp"

namespace gd::blas {

// Whether an operand is used as stored or transposed.
enum class Op : bool { none = false, transpose = true };

// C (m x n, row stride ldc) = alpha * op(A) (m x k) @ op(B) (k x n) + beta * C, then the
// epilogue (+ bias, relu, relu-backward mask: kernels.hpp). Row-major. beta == 0 overwrites C
// without reading it (NaN in C does not propagate). m, n, k >= 0.
template <class T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc,
          const kernels::Epilogue<T>& epilogue = {}) noexcept;

// gemm in panels of about panel_macs multiply-adds, asking stop() between them, so that a
// product of seconds (30000 x 784 x 1024) can be abandoned within a panel's time. Splits C's
// rows (op_a none), or the shared dimension k when A is transposed (the weight gradient
// A^T dZ over a large batch: panels accumulate with beta = 1, the epilogue comes with the last).
// Returns false when stop() said to stop (C is then partly computed); gemm itself when stop is
// null or the product is below two panels. Each panel repacks the other operand (OpenBLAS
// packs B once per call), a cost that shrinks with the panel's rows, not its width: 512-row
// panels cost ~15-25% on 8192 x 2048 x 2048, whole 1024-row ones much less; see
// bench/blas_panels.py for the rate of a full-batch step against NumPy's GEMMs.
template <class T>
bool gemm_interruptible(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                        index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                        const kernels::Epilogue<T>& epilogue, StopCheck* stop) noexcept;
inline constexpr index_t panel_macs = index_t(1) << 31;
inline constexpr index_t min_panel_rows = 1024;

// Products with at most this many multiply-adds (m * n * k) take the own kernel (when its
// depth and packing limits allow, kernels.hpp); larger ones OpenBLAS, which uses threads.
// Why here: the own kernel saves OpenBLAS's per-call overhead, which dominates small products,
// while OpenBLAS's kernel is slightly faster per multiply-add on large ones; the two meet
// around 2^17. Products with both operands as stored and n >= 32 take the own kernel up to
// twice this, since it also saves the separate bias/relu pass after OpenBLAS. (The figures
// behind both choices, and the machine: docs/design.md, "Kernel choice".)
inline constexpr index_t small_gemm_limit = 1 << 17;

// Whether gemm takes the own kernel for this product (exposed for tests and benchmarks).
bool use_own_kernel(Op op_a, Op op_b, index_t m, index_t n, index_t k) noexcept;

// Threads OpenBLAS may use (process-wide). Growing the count warms the new threads (below).
void set_num_threads(int n) noexcept;

// OpenBLAS takes a buffer from its pool for the calling thread and for each worker thread on
// their first product, and when that allocation fails it prints "Memory allocation still
// failed after 10 retries" and ends the process: no exception reaches the caller. The buffers
// are kept for reuse, so gdcore fills the pool while memory is plentiful: warm_up() runs one
// product on every thread (at import and after set_num_threads). Later calls reuse the buffers;
// the bindings probe for room (reserve_call_buffer) before more calls run at once than ever.
// False if the warm-up's own arrays could not be allocated.
bool warm_up() noexcept;
// Room for one more OpenBLAS buffer right now: a probe mapping of buffer_probe_bytes, released
// at once. False when even that address space is not available.
bool buffer_room() noexcept;
inline constexpr std::size_t buffer_probe_bytes = std::size_t(64) << 20;  // >= BUFFER_SIZE
int get_num_threads() noexcept;

// OpenBLAS build configuration and the kernel it picked for this CPU.
const char* config() noexcept;
const char* corename() noexcept;

}  // namespace gd::blas
