// GEMM dispatch: the own kernel for tiny products, scipy-openblas32 for the rest.
#include "blas.hpp"

#include <cblas.h>

namespace gd::blas {
namespace {

// Plain loops for tiny products, one specialisation per (op_a, op_b) so that no branch sits in
// an inner loop. C = beta * C first (beta == 0 overwrites), then += alpha * op(A) @ op(B).
template <class T>
void scale_rows(index_t m, index_t n, T beta, T* c, index_t ldc) noexcept {
    for (index_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        if (beta == T(0)) {
            for (index_t j = 0; j < n; ++j) ci[j] = T(0);
        } else if (beta != T(1)) {
            for (index_t j = 0; j < n; ++j) ci[j] *= beta;
        }
    }
}

template <Op op_a, Op op_b, class T>
void small_gemm(index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b,
                index_t ldb, T beta, T* c, index_t ldc) noexcept {
    scale_rows(m, n, beta, c, ldc);
    for (index_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        if constexpr (op_b == Op::none) {
            // C[i, :] += alpha * op(A)[i, p] * B[p, :]   (contiguous, vectorisable inner loop)
            for (index_t p = 0; p < k; ++p) {
                const T aip = alpha * (op_a == Op::none ? a[i * lda + p] : a[p * lda + i]);
                const T* bp = b + p * ldb;
                for (index_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
            }
        } else {
            // C[i, j] += alpha * dot(op(A)[i, :], B[j, :])
            for (index_t j = 0; j < n; ++j) {
                const T* bj = b + j * ldb;
                T sum = T(0);
                for (index_t p = 0; p < k; ++p)
                    sum += (op_a == Op::none ? a[i * lda + p] : a[p * lda + i]) * bj[p];
                ci[j] += alpha * sum;
            }
        }
    }
}

template <class T>
void small_gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) noexcept {
    if (op_a == Op::none && op_b == Op::none)
        small_gemm<Op::none, Op::none>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (op_a == Op::transpose && op_b == Op::none)
        small_gemm<Op::transpose, Op::none>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (op_a == Op::none)
        small_gemm<Op::none, Op::transpose>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        small_gemm<Op::transpose, Op::transpose>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

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

}  // namespace

template <class T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc) noexcept {
    if (m == 0 || n == 0) return;
    // (each factor bounded first: the product cannot overflow)
    if (m <= small_gemm_limit && n <= small_gemm_limit && k <= small_gemm_limit &&
        m * n * k <= small_gemm_limit) {
        small_gemm(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
        blas_gemm(op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}

void set_num_threads(int n) noexcept { scipy_openblas_set_num_threads(n); }
int get_num_threads() noexcept { return scipy_openblas_get_num_threads(); }
const char* config() noexcept { return scipy_openblas_get_config(); }
const char* corename() noexcept { return scipy_openblas_get_corename(); }

template void gemm<float>(Op, Op, index_t, index_t, index_t, float, const float*, index_t,
                          const float*, index_t, float, float*, index_t) noexcept;
template void gemm<double>(Op, Op, index_t, index_t, index_t, double, const double*, index_t,
                           const double*, index_t, double, double*, index_t) noexcept;

}  // namespace gd::blas
