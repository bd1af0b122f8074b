// Dense layer kernels: every product is one blas::gemm call (in panels when it is large and the
// call can be interrupted).
#include "dense.hpp"

#include <type_traits>

#include "blas.hpp"
#include "kernels.hpp"

namespace gd {

template <class T>
bool dense_forward(const T* a_prev, const T* w, const T* b, index_t n, index_t n_in,
                   index_t n_out, T* z, bool relu, StopCheck* stop) noexcept {
    // Z = A_prev @ W, then + b on every row (the order NumPy's A @ W + b uses; the own kernel
    // adds b to each tile as it stores it).
    return blas::gemm_interruptible(blas::Op::none, blas::Op::none, n, n_out, n_in, T(1), a_prev,
                                    n_in, w, n_out, T(0), z, n_out,
                                    kernels::Epilogue<T>{b, relu, nullptr, 0}, stop);
}

template <class T>
bool dense_backward(const T* a_prev, const T* dz, const T* w, index_t n, index_t n_in,
                    index_t n_out, T* dw, T* db, T* da_prev, bool relu_prev,
                    StopCheck* stop) noexcept {
    // dW = A_prev^T @ dZ
    if (!blas::gemm_interruptible(blas::Op::transpose, blas::Op::none, n_in, n_out, n, T(1),
                                  a_prev, n_in, dz, n_out, T(0), dw, n_out, {}, stop))
        return false;
    // db = sum_rows(dZ), rows added in order (as NumPy's dZ.sum(axis=0) on a C array)
    if constexpr (std::is_same_v<T, float>) kernels::table().column_sums_f32(dz, n, n_out, db);
    else kernels::table().column_sums_f64(dz, n, n_out, db);
    // dA_prev = dZ @ W^T
    if (da_prev == nullptr) return true;
    return blas::gemm_interruptible(
        blas::Op::none, blas::Op::transpose, n, n_in, n_out, T(1), dz, n_out, w, n_out, T(0),
        da_prev, n_in, kernels::Epilogue<T>{nullptr, false, relu_prev ? a_prev : nullptr, n_in},
        stop);
}

template bool dense_forward<float>(const float*, const float*, const float*, index_t, index_t,
                                   index_t, float*, bool, StopCheck*) noexcept;
template bool dense_forward<double>(const double*, const double*, const double*, index_t,
                                    index_t, index_t, double*, bool, StopCheck*) noexcept;
template bool dense_backward<float>(const float*, const float*, const float*, index_t, index_t,
                                    index_t, float*, float*, float*, bool, StopCheck*) noexcept;
template bool dense_backward<double>(const double*, const double*, const double*, index_t,
                                     index_t, index_t, double*, double*, double*, bool,
                                     StopCheck*) noexcept;

}  // namespace gd
