// GEMM dispatch: the own register-blocked kernel (kernels.hpp) for small products, where a BLAS
// call costs more than the arithmetic; scipy-openblas32 for the rest.
#include "blas.hpp"

#include <cblas.h>

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


}  // namespace

bool use_own_kernel(Op op_a, Op op_b, index_t m, index_t n, index_t k) noexcept {
    // (each factor bounded first: the product cannot overflow)
    if (op_a == Op::transpose && op_b == Op::transpose) return false;
    if (k > kernels::max_depth || m > small_gemm_limit || n > small_gemm_limit) return false;
    if (op_b == Op::transpose && k * n > kernels::max_packed) return false;
    const index_t macs = m * n * k;
    // Both operands as stored and C at least 32 columns wide (the kernel's best case: whole
    // 4 x 2-vector tiles, and no separate epilogue pass after it): up to twice the limit.
    // (Narrower C wastes vector lanes: 128x10x128 takes 5.1 us here, OpenBLAS 4.7.)
    if (op_a == Op::none && op_b == Op::none && n >= 32) return macs <= 2 * small_gemm_limit;
    return macs <= small_gemm_limit;
}

template <class T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc,
          const kernels::Epilogue<T>& epilogue) noexcept {
    if (m == 0 || n == 0) return;
    if (use_own_kernel(op_a, op_b, m, n, k)) {
        own_gemm(T())(op_a == Op::transpose, op_b == Op::transpose, m, n, k, alpha, a, lda, b,
                      ldb, beta, c, ldc, epilogue);
    } else {
        blas_gemm(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        apply_epilogue(m, n, epilogue, c, ldc);
    }
}

void set_num_threads(int n) noexcept { scipy_openblas_set_num_threads(n); }
int get_num_threads() noexcept { return scipy_openblas_get_num_threads(); }
const char* config() noexcept { return scipy_openblas_get_config(); }
const char* corename() noexcept { return scipy_openblas_get_corename(); }

template void gemm<float>(Op, Op, index_t, index_t, index_t, float, const float*, index_t,
                          const float*, index_t, float, float*, index_t,
                          const kernels::Epilogue<float>&) noexcept;
template void gemm<double>(Op, Op, index_t, index_t, index_t, double, const double*, index_t,
                           const double*, index_t, double, double*, index_t,
                           const kernels::Epilogue<double>&) noexcept;

}  // namespace gd::blas
