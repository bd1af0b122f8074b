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
// gemm_interruptible asks stop() after a product of at least this many multiply-adds (tens of
// microseconds); after smaller ones a clock read would cost more than a tiny network's product.
inline constexpr index_t poll_macs = index_t(1) << 20;
inline constexpr index_t min_panel_rows = 1024;

// Products with at most the kernel table's limit of multiply-adds (m * n * k) take the own
// kernel (when its depth and packing limits allow, kernels.hpp); larger ones OpenBLAS. The
// limit depends on the instruction set and the operands' layout (kernels::GemmLimits, set per
// table in kernels_<isa>.cpp): where the own kernel beats OpenBLAS's kernel for the same
// instruction set, measured per shape (docs/design.md, "Kernel choice"). It saves OpenBLAS's
// per-call overhead, which dominates small products, and the separate bias/relu pass after
// OpenBLAS. No table's limit goes above small_gemm_limit.
inline constexpr index_t small_gemm_limit = index_t(1) << 19;

// Whether gemm takes the own kernel for this product (exposed for tests and benchmarks).
bool use_own_kernel(Op op_a, Op op_b, index_t m, index_t n, index_t k) noexcept;

// -- Threads ---------------------------------------------------------------------------------
// OpenBLAS's threads hurt small and mid-sized products: its caller waits for every worker, and
// when the other core is busy (another process, a second notebook, a joblib worker) a worker
// that is not scheduled makes a 20 us product take a scheduler time slice. Measured on a
// 2-core machine under load (bench/threads.py): 200x64x100 went from 96 us on one thread to
// 16 ms on two, 1024^3 from 71 ms to 111 ms; idle, two threads gain nothing below ~1M
// multiply-adds (the hand-off costs more than half the product). So:
//  * gdcore runs OpenBLAS single-threaded while it computes (ThreadRegion below), and
//  * splits a product of at least split_gemm_limit multiply-adds itself, into chunks of C's
//    columns (rows when C is narrow: chunk_plan) that its helper threads claim as they
//    arrive (threads.hpp). The caller runs every chunk no helper took, so a helper that
//    is not running costs little; after a split that showed the other core busy, splits run on
//    the caller alone for a while (blas.cpp, solo_first). Chunks hold at least about
//    split_gemm_limit multiply-adds each, at most one per core the process may use (2 to
//    max_chunks): every chunk is a call of its own, which packs the other operand again.
//  * The chunks depend on the shape and the machine's core count only, never on the thread
//    setting or the load, so results are the same bit for bit with any number of threads.
// The thread budget is OpenBLAS's own setting, so set_num_threads, threadpoolctl's limits and
// OPENBLAS_NUM_THREADS all govern gdcore too.
// (2^20: below it a split lost on this 2-core VM even idle-ish, 64^3 in 2 chunks 19 us against
// 16 us on the caller alone with the AVX2 kernels, and far more under load.)
inline constexpr index_t split_gemm_limit = index_t(1) << 20;
inline constexpr int max_chunks = 8;
inline constexpr index_t chunk_rows = 8;      // OpenBLAS's and the own kernel's row blocking
inline constexpr index_t chunk_columns = 16;  // 64 bytes of float32

struct ChunkPlan {
    int chunks = 1;      // 1: not split
    bool by_rows = true;
    index_t extent = 0;  // rows (or columns) of C split
    index_t step = 0;    // rows (or columns) per chunk; the last may have fewer
};
// How gemm splits a product of op(A) (m x k) and op(B) (k x n) (exposed for tests).
ChunkPlan chunk_plan(index_t m, index_t n, index_t k) noexcept;

// Since the process started: products split, those run on the caller alone while the
// other cores counted as busy (after a contended split), those a helper joined, and those that
// showed a busy core. For benchmarks (bench/threads.py), approximate.
struct SplitCounts {
    long long split = 0, solo = 0, joined = 0, contended = 0;
};
SplitCounts split_counts() noexcept;

// While one exists on a thread, the gdcore products of that thread run inside one region: the
// first product that reaches OpenBLAS sets OpenBLAS to one thread (process-wide, counted over
// threads) and reads the budget; the outermost ThreadRegion puts the setting back. Without
// one, each such product enters and leaves on its own (~0.1 us). Not copyable.
class ThreadRegion {
public:
    ThreadRegion() noexcept;
    ~ThreadRegion();
    ThreadRegion(const ThreadRegion&) = delete;
    ThreadRegion& operator=(const ThreadRegion&) = delete;
};

// Threads gdcore and its OpenBLAS may use (process-wide): OpenBLAS's setting. Growing the
// count warms the new threads (below) and starts the helpers.
void set_num_threads(int n) noexcept;
// Starts helper threads up to the thread count minus one (each warmed as warm_up does);
// returns how many run.
int prepare_helpers() noexcept;

// OpenBLAS takes a buffer from its pool for each call in flight, and when that allocation
// fails it prints "Memory allocation still failed after 10 retries" and ends the process: no
// exception reaches the caller. The buffers are kept for reuse, so gdcore fills the pool while
// memory is plentiful: warm_up() runs one single-threaded product (at import, after
// set_num_threads grows, and on each helper thread as it starts). Later calls reuse the
// buffers; the bindings probe for room (BlasCall) before more calls run at once than ever, and
// a call that would put more gdcore calls in flight than buffers are known waits for one
// (blas.cpp, BlasBuffer). False if the warm-up's own arrays could not be allocated.
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
