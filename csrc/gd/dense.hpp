// A dense layer's affine part through GEMM: Z = A_prev @ W + b and its backward pass.
#pragma once

#include "codes.hpp"
#include "interrupt.hpp"

namespace gd {

// z (n x n_out) = a_prev (n x n_in) @ w (n_in x n_out) + b (n_out,). All row-major, contiguous.
// relu: z = max(z, 0) as it is stored (the activation fused into the product).
// stop (may be null) is asked between row panels of a large product: false if it said stop
// (z is then incomplete).
template <class T>
bool dense_forward(const T* a_prev, const T* w, const T* b, index_t n, index_t n_in,
                   index_t n_out, T* z, bool relu = false, StopCheck* stop = nullptr) noexcept;

// dw (n_in x n_out) = a_prev^T @ dz, db (n_out,) = sum over the rows of dz, and, when da_prev is
// not null, da_prev (n x n_in) = dz @ w^T. dz is (n x n_out). relu_prev: the previous layer is a
// relu; da_prev is then already its dZ = dA * (a_prev > 0) (fused into the product).
// stop: as dense_forward's (false: the outputs are incomplete).
template <class T>
bool dense_backward(const T* a_prev, const T* dz, const T* w, index_t n, index_t n_in,
                    index_t n_out, T* dw, T* db, T* da_prev, bool relu_prev = false,
                    StopCheck* stop = nullptr) noexcept;

}  // namespace gd
