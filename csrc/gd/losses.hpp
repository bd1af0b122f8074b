// Losses of the output layer: the batch loss and its gradient w.r.t. the output Z.
#pragma once

#include <cstdint>

#include "codes.hpp"

namespace gd {

// Targets of a batch: dense values (n x k, row-major) or int64 class indices (n,), one of them.
// Class indices are only valid with cross_entropy and must lie in [0, k).
template <class T>
struct Targets {
    const T* values = nullptr;
    const std::int64_t* labels = nullptr;
};

// Batch loss L = sum_j(w_j l_j) / sum_j(w_j) from the output layer's logits z and activations
// a = f(z), both (n x k); w (n,) or null for all ones. Sums are accumulated in double.
template <class T>
T loss_value(Loss loss, const T* z, const T* a, Targets<T> y, const T* w, index_t n,
             index_t k) noexcept;

// L as loss_value, and dz (n x k) = dL/dZ of the output layer: fused (a - y) scaled for bce and
// cross_entropy; dL/dA * f'(Z) for the others (output activation `out`). dz must not alias z/a.
// cross_entropy reads z only (a may then be null: see Network::forward's output_activation).
template <class T>
T loss_gradient(Loss loss, Activation out, const T* z, const T* a, Targets<T> y, const T* w,
                index_t n, index_t k, T* dz) noexcept;

// loss_gradient of bce (sigmoid output) for `lanes` networks at once, on lane arrays (element e
// of network l at e * lanes + l: train_lanes.hpp's layout) z, a and dz (n x k elements each);
// the targets y (n x k values) and weights w are the networks' common ones. values[l] is
// network l's loss. Each network's value and dz equal its own loss_gradient's bit for bit: the
// same terms, summed per network in loss_gradient's order. terms: scratch of n x k x lanes.
template <class T>
void bce_gradient_lanes(const T* z, const T* a, const T* y, const T* w, index_t n, index_t k,
                        index_t lanes, T* terms, T* dz, T* values) noexcept;

// The targets with label smoothing `label_smoothing` (eps), as dense values in out (n x k):
// cross_entropy (1 - eps) y + eps / k (torch's CrossEntropyLoss(label_smoothing=eps); class
// indices are one-hot rows first), bce (1 - eps) y + eps / 2. Both factors are computed in
// double and rounded to T, then out = y * (1 - eps) + eps / c in T. Returns out as Targets.
template <class T>
Targets<T> smooth_targets(Loss loss, Targets<T> y, index_t n, index_t k, double label_smoothing,
                          T* out) noexcept;

}  // namespace gd
