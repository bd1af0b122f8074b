// GEMM dispatch: the own register-blocked kernel (kernels.hpp) for small products, where a BLAS
// call costs more than the arithmetic; scipy-openblas32 for the rest.
#include "blas.hpp"

#include <cblas.h>

#include <sys/mman.h>

#include <algorithm>
#include <memory>
#include <new>

#include "kernels.hpp"

namespace gd::blas {
namespace {

inline CBLAS_TRANSPOSE cblas_op(Op op) noexcept {
    return op == Op::none ? CblasNoTrans : CblasTrans;
}

inline void blas_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, float alpha,
                      const float* a, index_t lda, const float* b, index_t ldb, float beta,
                      float* c, index_t ldc) noexcept {
    scipy_cblas_sgemm(CblasRowMajor, cblas_op(op_a), cblas_op(op_b), blasint(m), blasint(n),
                      blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

inline void blas_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, double alpha,
                      const double* a, index_t lda, const double* b, index_t ldb, double beta,
                      double* c, index_t ldc) noexcept {
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
    // Both operands as stored and C at least 32 columns wide (the kernel's best case: whole
    // 4 x 2-vector tiles, and no separate epilogue pass after it): up to twice the limit.
    // (Narrower C wastes vector lanes, and OpenBLAS is then as fast.)
    if (op_a == Op::none && op_b == Op::none && n >= 32) return macs <= 2 * small_gemm_limit;
    return macs <= small_gemm_limit;
}

template <class T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc,
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

template <class T>
bool gemm_interruptible(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                        index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                        const kernels::Epilogue<T>& epilogue, StopCheck* stop) noexcept {
    const double macs = double(m) * double(n) * double(k);
    if (stop == nullptr || macs <= 2.0 * double(panel_macs)) {
        gemm(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue);
        return !(stop != nullptr && (*stop)());
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
    // 512^3 multiply-adds: above OpenBLAS's threading threshold for any thread count it will
    // use here, so every worker runs a part (a millisecond or so, once).
    constexpr index_t n = 512;
    std::unique_ptr<float[]> a(new (std::nothrow) float[std::size_t(3 * n * n)]);
    if (!a) return false;
    float* b = a.get() + n * n;
    float* c = b + n * n;
    std::fill(a.get(), a.get() + 2 * n * n, 0.0f);
    blas_gemm(Op::none, Op::none, n, n, n, 1.0f, a.get(), n, b, n, 0.0f, c, n);
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
    if (n > before) warm_up();
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
