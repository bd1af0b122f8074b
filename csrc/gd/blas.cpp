// GEMM dispatch: the own register-blocked kernel (kernels.hpp) for small products, where a BLAS
// call costs more than the arithmetic; scipy-openblas32 for the rest, single-threaded while
// gdcore computes; large products split in chunks over gdcore's helper threads (threads.hpp).
#include "blas.hpp"

#include <cblas.h>

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <new>
#include <thread>

#include "kernels.hpp"
#include "threads.hpp"

namespace gd::blas {
namespace {

inline CBLAS_TRANSPOSE cblas_op(Op op) noexcept {
    return op == Op::none ? CblasNoTrans : CblasTrans;
}

// OpenBLAS's buffers (blas.hpp, warm_up): each call in flight holds one, and a call that finds
// none free maps a new one, ending the process if that fails. gdcore's calls in flight, and how
// many at once OpenBLAS is known to have buffers for: a call that would go past that first
// checks for room (buffer_room), and without room waits for another call to finish, so that a
// helper thread's chunk never makes OpenBLAS map a buffer the process has no room for.
std::atomic<int> blas_in_flight{0};
std::atomic<int> blas_buffers_known{1};  // the warm-up's

class BlasBuffer {
public:
    BlasBuffer() noexcept {
        for (;;) {
            const int now = blas_in_flight.fetch_add(1) + 1;
            int known = blas_buffers_known.load();
            if (now <= known) return;
            if (buffer_room()) {
                while (now > known && !blas_buffers_known.compare_exchange_weak(known, now)) {
                }
                return;
            }
            blas_in_flight.fetch_sub(1);
            while (blas_in_flight.load() >= blas_buffers_known.load()) std::this_thread::yield();
        }
    }
    ~BlasBuffer() { blas_in_flight.fetch_sub(1); }
    BlasBuffer(const BlasBuffer&) = delete;
    BlasBuffer& operator=(const BlasBuffer&) = delete;
};

inline void blas_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, float alpha,
                      const float* a, index_t lda, const float* b, index_t ldb, float beta,
                      float* c, index_t ldc) noexcept {
    BlasBuffer buffer;
    scipy_cblas_sgemm(CblasRowMajor, cblas_op(op_a), cblas_op(op_b), blasint(m), blasint(n),
                      blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

inline void blas_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, double alpha,
                      const double* a, index_t lda, const double* b, index_t ldb, double beta,
                      double* c, index_t ldc) noexcept {
    BlasBuffer buffer;
    scipy_cblas_dgemm(CblasRowMajor, cblas_op(op_a), cblas_op(op_b), blasint(m), blasint(n),
                      blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

// The epilogue after a BLAS call, one pass per step (each loop vectorises).
template <class T>
void apply_epilogue(index_t m, index_t n, const kernels::Epilogue<T>& ep, T* c,
                    index_t ldc) noexcept {
    for (index_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        if (ep.bias != nullptr)
            for (index_t j = 0; j < n; ++j) ci[j] += ep.bias[j];
        if (ep.relu)
            for (index_t j = 0; j < n; ++j) ci[j] = ci[j] < T(0) ? T(0) : ci[j];
        if (ep.mask != nullptr) {
            const T* mi = ep.mask + i * ep.ldm;
            for (index_t j = 0; j < n; ++j) ci[j] = mi[j] > T(0) ? ci[j] : T(0);
        }
    }
}

inline kernels::GemmFn<float> own_gemm(float) noexcept { return kernels::table().sgemm; }
inline kernels::GemmFn<double> own_gemm(double) noexcept { return kernels::table().dgemm; }

// The own kernel's scratch for this thread (kernels::gemm_work_elements, 64-byte aligned),
// allocated on a thread's first small product and freed when the thread ends; null while it
// cannot be allocated (the product then goes to OpenBLAS). On the heap, not the stack: a
// thread started after threading.stack_size(64 * 1024) has no room for ~70 KB of scratch.
struct AlignedFree {
    void operator()(void* p) const noexcept { ::operator delete(p, std::align_val_t(64)); }
};

template <class T>
T* thread_work() noexcept {
    thread_local std::unique_ptr<T, AlignedFree> work;
    if (!work) {
        work.reset(static_cast<T*>(::operator new(
            sizeof(T) * std::size_t(kernels::gemm_work_elements), std::align_val_t(64),
            std::nothrow)));
    }
    return work.get();
}

}  // namespace

bool use_own_kernel(Op op_a, Op op_b, index_t m, index_t n, index_t k) noexcept {
    // (each factor bounded first: the product cannot overflow)
    if (op_a == Op::transpose && op_b == Op::transpose) return false;
    if (k > kernels::max_depth || m > small_gemm_limit || n > small_gemm_limit) return false;
    if (op_b == Op::transpose && k * n > kernels::max_packed) return false;
    const index_t macs = m * n * k;
    const kernels::GemmLimits& limits = kernels::table().own_gemm;
    // Both operands as stored and C at least 32 columns wide: the kernel's best case (whole
    // tiles, and no separate epilogue pass after it). Narrower C wastes vector lanes.
    index_t limit = limits.other;
    if (op_a == Op::none && op_b == Op::none && n >= 32) limit = limits.wide;
    else if (op_a == Op::transpose) limit = limits.transpose_a;
    return macs <= std::min(limit, small_gemm_limit);
}

namespace {

// One product on the calling thread: the own kernel or OpenBLAS (single-threaded inside a
// region), then the epilogue.
template <class T>
void gemm_single(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                 index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                 const kernels::Epilogue<T>& epilogue) noexcept {
    if (m == 0 || n == 0) return;
    T* work = use_own_kernel(op_a, op_b, m, n, k) ? thread_work<T>() : nullptr;
    if (work != nullptr) {
        own_gemm(T())(op_a == Op::transpose, op_b == Op::transpose, m, n, k, alpha, a, lda, b,
                      ldb, beta, c, ldc, epilogue, work);
    } else {
        blas_gemm(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        apply_epilogue(m, n, epilogue, c, ldc);
    }
}

// A product cut into chunks of C's rows (or, when C has few rows, of its columns): each chunk
// is a product of its own, the same whichever thread runs it.
template <class T>
struct Chunked {
    Op op_a, op_b;
    index_t m, n, k;
    T alpha;
    const T* a;
    index_t lda;
    const T* b;
    index_t ldb;
    T beta;
    T* c;
    index_t ldc;
    kernels::Epilogue<T> epilogue;
    ChunkPlan plan;

    static void run(void* self, int chunk) noexcept {
        const Chunked& p = *static_cast<const Chunked*>(self);
        const index_t lo = index_t(chunk) * p.plan.step;
        const index_t len = std::min(p.plan.step, p.plan.extent - lo);
        kernels::Epilogue<T> ep = p.epilogue;
        if (p.plan.by_rows) {
            if (ep.mask != nullptr) ep.mask += lo * ep.ldm;
            const T* a = p.op_a == Op::none ? p.a + lo * p.lda : p.a + lo;
            gemm_single(p.op_a, p.op_b, len, p.n, p.k, p.alpha, a, p.lda, p.b, p.ldb, p.beta,
                        p.c + lo * p.ldc, p.ldc, ep);
        } else {
            if (ep.bias != nullptr) ep.bias += lo;
            if (ep.mask != nullptr) ep.mask += lo;
            const T* b = p.op_b == Op::none ? p.b + lo : p.b + lo * p.ldb;
            gemm_single(p.op_a, p.op_b, p.m, len, p.k, p.alpha, p.a, p.lda, b, p.ldb, p.beta,
                        p.c + lo, p.ldc, ep);
        }
    }
};

// -- the thread region ----------------------------------------------------------------------
// OpenBLAS's thread count is the budget users set (set_num_threads, threadpoolctl,
// OPENBLAS_NUM_THREADS). While any gdcore product runs, OpenBLAS is set to one thread and
// gdcore spends the budget itself; the first to enter records it, the last to leave puts it
// back (unless someone else changed the setting meanwhile).
std::mutex region_mutex;
int region_users = 0;
int region_budget = 1;

int enter_region() noexcept {
    std::lock_guard<std::mutex> lock(region_mutex);
    if (region_users++ == 0) {
        region_budget = std::max(1, scipy_openblas_get_num_threads());
        if (region_budget > 1) scipy_openblas_set_num_threads(1);
    }
    return region_budget;
}

void leave_region() noexcept {
    std::lock_guard<std::mutex> lock(region_mutex);
    if (--region_users == 0 && region_budget > 1 && scipy_openblas_get_num_threads() == 1)
        scipy_openblas_set_num_threads(region_budget);
}

// This thread's region: ThreadRegion objects nest (depth); the first product that needs it
// enters the process-wide region, and the outermost ThreadRegion leaves it.
struct RegionState {
    int depth = 0;
    bool entered = false;
    int budget = 1;
};
thread_local RegionState this_thread_region;

// The helper pool's threads start with one OpenBLAS product, so that OpenBLAS's buffer for
// each is taken while memory is plentiful (warm_up).
void warm_helper() noexcept { warm_up(); }

// After a split that showed the other cores busy (threads::Outcome::contended), split products
// run on the caller alone for a while: 1 ms at first, doubling at each such sign (up to
// solo_most); the period halves again after clean_splits_to_relax splits in a row that the
// helpers joined cleanly. Time, not a count of products: a wait for a descheduled helper costs
// about the same whatever the product's size, while a large product gains milliseconds from a
// helper and a small one microseconds. (At most 50 ms, relaxed after 4 clean splits: with 0.5 s
// and 16, two hiccups of the hypervisor kept the medium workload on one core for 72% of its
// splits on an idle machine; 50 ms is still several of a busy core's scheduler slices.)
using clock = std::chrono::steady_clock;
std::atomic<clock::rep> solo_until{0};                 // clock ticks
std::atomic<clock::rep> solo_next{0};                  // the next solo period, ticks
std::atomic<int> clean_splits{0};
constexpr auto solo_first = std::chrono::milliseconds(1);
constexpr auto solo_most = std::chrono::milliseconds(50);
constexpr int clean_splits_to_relax = 4;

// How the splits went (split_counts, for benchmarks): relaxed counters, approximate under races.
std::atomic<long long> count_split{0}, count_solo{0}, count_joined{0}, count_contended{0};

template <class T>
void gemm_in_region(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                    index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                    const kernels::Epilogue<T>& epilogue, int budget) noexcept {
    const ChunkPlan plan = chunk_plan(m, n, k);
    if (plan.chunks <= 1) {
        gemm_single(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue);
        return;
    }
    Chunked<T> product{op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue, plan};
    int helpers = budget - 1;
    if (helpers > 0 &&
        clock::now().time_since_epoch().count() < solo_until.load(std::memory_order_relaxed))
        helpers = 0;
    if (helpers > 0 && threads::pool_size() < helpers) threads::ensure_helpers(helpers, &warm_helper);
    const threads::Outcome outcome =
        threads::run_chunks(&Chunked<T>::run, &product, plan.chunks, helpers);
    count_split.fetch_add(1, std::memory_order_relaxed);
    if (helpers == 0) {
        if (budget > 1) count_solo.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (outcome.by_helpers > 0) count_joined.fetch_add(1, std::memory_order_relaxed);
    if (outcome.contended) count_contended.fetch_add(1, std::memory_order_relaxed);
    // (Relaxed, and races between callers tolerated: a lost update only changes how long the
    // caller stays alone, never a result.)
    const clock::rep first = clock::duration(solo_first).count();
    const clock::rep most = clock::duration(solo_most).count();
    if (outcome.contended) {
        const clock::rep period = std::clamp(solo_next.load(std::memory_order_relaxed), first, most);
        solo_until.store(clock::now().time_since_epoch().count() + period,
                         std::memory_order_relaxed);
        solo_next.store(std::min(2 * period, most), std::memory_order_relaxed);
        clean_splits.store(0, std::memory_order_relaxed);
    } else if (outcome.by_helpers > 0 &&
               clean_splits.fetch_add(1, std::memory_order_relaxed) + 1 >= clean_splits_to_relax) {
        clean_splits.store(0, std::memory_order_relaxed);
        solo_next.store(solo_next.load(std::memory_order_relaxed) / 2, std::memory_order_relaxed);
    }
}

}  // namespace

SplitCounts split_counts() noexcept {
    return {count_split.load(), count_solo.load(), count_joined.load(), count_contended.load()};
}

ChunkPlan chunk_plan(index_t m, index_t n, index_t k) noexcept {
    ChunkPlan plan;
    const double macs = double(m) * double(n) * double(k);
    if (macs < double(split_gemm_limit)) return plan;
    // As many chunks as cores (at most max_chunks), fewer for smaller products. Not more: each
    // chunk is an OpenBLAS call that packs the other operand again (8 chunks of the large
    // workload's 512 x 2048 x 1024 products ran at 35% of the GEMM rate, one per core ~90%).
    static const int per_core = std::clamp(threads::max_helpers() + 1, 2, max_chunks);
    const int chunks = int(std::clamp<double>(macs / double(split_gemm_limit), 2, per_core));
    // Columns where C is wide enough: OpenBLAS ran the large workload's four products in two
    // single-threaded chunks at 62-102 GFLOP/s cut by columns against 47-78 by rows (OpenBLAS's
    // own two threads: 89-99), also 2048 x 512^T @ 512 x 2048, where both cuts repack as much
    // (docs/design.md, "Threads").
    const bool rows_fit = m >= 2 * chunk_rows, columns_fit = n >= 2 * chunk_columns;
    if (rows_fit && !columns_fit) {
        plan.by_rows = true;
        plan.extent = m;
        plan.step = ((m + chunks - 1) / chunks + chunk_rows - 1) / chunk_rows * chunk_rows;
    } else if (columns_fit) {
        plan.by_rows = false;
        plan.extent = n;
        plan.step = ((n + chunks - 1) / chunks + chunk_columns - 1) / chunk_columns * chunk_columns;
    } else {
        return plan;
    }
    plan.chunks = int((plan.extent + plan.step - 1) / plan.step);
    return plan;
}

ThreadRegion::ThreadRegion() noexcept { ++this_thread_region.depth; }

ThreadRegion::~ThreadRegion() {
    RegionState& region = this_thread_region;
    if (--region.depth == 0 && region.entered) {
        region.entered = false;
        leave_region();
    }
}

template <class T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc,
          const kernels::Epilogue<T>& epilogue) noexcept {
    if (m == 0 || n == 0) return;
    // A small product on the own kernel needs no region (predict of a row stays ~1 us), and
    // none of the checks below: straight to the kernel.
    if (use_own_kernel(op_a, op_b, m, n, k) && m * n * k < split_gemm_limit) {
        if (T* work = thread_work<T>()) {
            own_gemm(T())(op_a == Op::transpose, op_b == Op::transpose, m, n, k, alpha, a, lda, b,
                          ldb, beta, c, ldc, epilogue, work);
            return;
        }
    }
    RegionState& region = this_thread_region;
    if (region.depth > 0) {
        if (!region.entered) {
            region.budget = enter_region();
            region.entered = true;
        }
        gemm_in_region(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue,
                       region.budget);
        return;
    }
    const int budget = enter_region();  // a caller without a ThreadRegion: one product's
    gemm_in_region(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue, budget);
    leave_region();
}

template <class T>
bool gemm_interruptible(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                        index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                        const kernels::Epilogue<T>& epilogue, StopCheck* stop) noexcept {
    const double macs = double(m) * double(n) * double(k);
    if (stop == nullptr || macs <= 2.0 * double(panel_macs)) {
        gemm(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue);
        // A small product is not worth a clock read: its caller asks between batches.
        return !(stop != nullptr && macs >= double(poll_macs) && (*stop)());
    }
    // Rows of the split dimension per panel: about panel_macs, a multiple of 64, at least
    // min_panel_rows.
    const index_t other = op_a == Op::none ? n * k : m * n;
    index_t rows = std::max<index_t>(min_panel_rows, panel_macs / std::max<index_t>(other, 1));
    rows = (rows + 63) / 64 * 64;
    if (op_a == Op::none) {  // C's rows i0 .. i0 + rows: A's rows and the mask's rows
        for (index_t i0 = 0; i0 < m; i0 += rows) {
            const index_t r = std::min(rows, m - i0);
            kernels::Epilogue<T> ep = epilogue;
            if (ep.mask != nullptr) ep.mask += i0 * ep.ldm;
            gemm(op_a, op_b, r, n, k, alpha, a + i0 * lda, lda, b, ldb, beta, c + i0 * ldc, ldc,
                 ep);
            if ((*stop)()) return false;
        }
        return true;
    }
    // A^T (m x k) stored k x m: its rows p0 .. p0 + rows with B's rows (or, transposed, columns).
    for (index_t p0 = 0; p0 < k; p0 += rows) {
        const index_t r = std::min(rows, k - p0);
        const bool last = p0 + r == k;
        const T* bp = op_b == Op::none ? b + p0 * ldb : b + p0;
        gemm(op_a, op_b, m, n, r, alpha, a + p0 * lda, lda, bp, ldb, p0 == 0 ? beta : T(1), c,
             ldc, last ? epilogue : kernels::Epilogue<T>{});
        if ((*stop)()) return false;
    }
    return true;
}

bool warm_up() noexcept {
    // 512^3 multiply-adds: above OpenBLAS's small-matrix path, which takes no buffer. Run
    // single-threaded, as every gdcore product runs OpenBLAS (a threaded warm-up left
    // OpenBLAS's own workers spinning for ~0.1 s after it, and they were never used again:
    // digits trained 1.9x slower right after set_num_threads(2)).
    constexpr index_t n = 512;
    std::unique_ptr<float[]> a(new (std::nothrow) float[std::size_t(3 * n * n)]);
    if (!a) return false;
    float* b = a.get() + n * n;
    float* c = b + n * n;
    std::fill(a.get(), a.get() + 2 * n * n, 0.0f);
    enter_region();
    blas_gemm(Op::none, Op::none, n, n, n, 1.0f, a.get(), n, b, n, 0.0f, c, n);
    leave_region();
    return true;
}

bool buffer_room() noexcept {
    void* p = mmap(nullptr, buffer_probe_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);  // as OpenBLAS maps its buffers
    if (p == MAP_FAILED) return false;
    munmap(p, buffer_probe_bytes);
    return true;
}

void set_num_threads(int n) noexcept {
    const int before = scipy_openblas_get_num_threads();
    scipy_openblas_set_num_threads(n);
    if (n > before) {
        warm_up();
        prepare_helpers();
    }
}

int prepare_helpers() noexcept {
    return threads::ensure_helpers(scipy_openblas_get_num_threads() - 1, &warm_helper);
}
int get_num_threads() noexcept { return scipy_openblas_get_num_threads(); }
const char* config() noexcept { return scipy_openblas_get_config(); }
const char* corename() noexcept { return scipy_openblas_get_corename(); }

template void gemm<float>(Op, Op, index_t, index_t, index_t, float, const float*, index_t,
                          const float*, index_t, float, float*, index_t,
                          const kernels::Epilogue<float>&) noexcept;
template void gemm<double>(Op, Op, index_t, index_t, index_t, double, const double*, index_t,
                           const double*, index_t, double, double*, index_t,
                           const kernels::Epilogue<double>&) noexcept;
template bool gemm_interruptible<float>(Op, Op, index_t, index_t, index_t, float, const float*,
                                        index_t, const float*, index_t, float, float*, index_t,
                                        const kernels::Epilogue<float>&, StopCheck*) noexcept;
template bool gemm_interruptible<double>(Op, Op, index_t, index_t, index_t, double,
                                         const double*, index_t, const double*, index_t, double,
                                         double*, index_t, const kernels::Epilogue<double>&,
                                         StopCheck*) noexcept;

}  // namespace gd::blas
