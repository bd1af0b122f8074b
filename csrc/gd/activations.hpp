// Activations A = f(Z) and their backward pass dZ = dA * f'(Z), PyTorch's definitions.
#pragma once

#include "codes.hpp"

namespace gd {

// A = f(Z) for a (rows x cols) row-major block; a may equal z (in place). Softmax is row-wise
// with the row maximum subtracted. The code is switched on once per call, not per element.
template <class T>
void activation_forward(Activation act, const T* z, T* a, index_t rows, index_t cols) noexcept;

// dZ = dA * f'(Z) from Z and A = f(Z); for softmax dZ = A * (dA - sum_k dA * A) row-wise.
// dz may equal da (in place).
template <class T>
void activation_backward(Activation act, const T* z, const T* a, const T* da, T* dz,
                         index_t rows, index_t cols) noexcept;

// e = exp(z - max of its row) for a (rows x cols) block, float32 by the vectorised kernel; a
// no-op when e is null. e may equal z. The shared first half of softmax and cross-entropy.
template <class T>
void row_shifted_exp(const T* z, index_t rows, index_t cols, T* e) noexcept;

// sigmoid(z) = 1 / (1 + exp(-z)), evaluated so that exp never overflows (as the reference).
template <class T>
inline T sigmoid(T z) noexcept;

}  // namespace gd

#include <cmath>

template <class T>
inline T gd::sigmoid(T z) noexcept {
    const T e = std::exp(-std::abs(z));  // in (0, 1]
    const T s = T(1) / (T(1) + e);         // sigmoid(|z|)
    return z >= T(0) ? s : e * s;          // sigmoid(-|z|) = e / (1 + e)
}
