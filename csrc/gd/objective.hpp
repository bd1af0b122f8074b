// The training objective of a batch or a full data set: data loss (with label smoothing) plus
// the l2 penalty, and its gradient, through the network (with dropout when asked). The one
// place the regularisers enter: train_epoch calls it per batch, and any solver that needs the
// full-batch objective and gradient (L-BFGS) calls objective_gradient on all rows, without
// dropout.
#pragma once

#include <cstdint>

#include "codes.hpp"
#include "dropout.hpp"
#include "interrupt.hpp"
#include "losses.hpp"
#include "network.hpp"

namespace gd {

// The regularisers (values checked by the caller).
struct Regularisers {
    // scikit-learn's alpha: the objective adds 0.5 l2 sum_i ||W_i||^2 / sum_w (weights only,
    // not biases; sum_w = the sum of the rows' sample weights, or their count) and the
    // gradient l2 W_i / sum_w. >= 0.
    double l2 = 0.0;
    // In [0, 1): cross_entropy and bce targets become smooth_targets (losses.hpp); no effect
    // on the other losses (the caller refuses it there).
    double label_smoothing = 0.0;
    // Dropout rate per layer (n_layers values in [0, 1), the last one 0), or null: none.
    const double* dropout = nullptr;
    // The seed of the dropout masks (random.hpp, stream_key).
    std::uint64_t dropout_seed = 0;
};

// sum_j w_j in double, or n without weights (the sum the losses divide by).
template <class T>
double sample_weight_sum(const T* w, index_t n) noexcept;

// 0.5 l2 sum_i ||W_i||^2 / sum_w, summed in double (0 when l2 is 0).
template <class T>
double l2_penalty(const Network<T>& net, double l2, double sum_w) noexcept;

// dw[i] += T(l2 / sum_w) * W_i for every layer (nothing when l2 is 0).
template <class T>
void l2_gradient(const Network<T>& net, double l2, double sum_w, T* const* dw) noexcept;

// The objective of x (n x n_inputs), targets y and sample weights w (null: all ones) at the
// current parameters: T(double(L) + l2_penalty), L the batch loss of loss_value with the
// regularisers' label smoothing. With reg.dropout, the forward pass drops out as
// Network::forward does with DropoutStep{reg.dropout, reg.dropout_seed, step} (step: the
// optimizer step the masks belong to); without, `step` is unused. Needs net.reserve(n), and
// net.reserve_dropout(n) with dropout. Writes *value; false if `stop` said stop (then
// nothing is written).
template <class T>
bool objective_value(Network<T>& net, const T* x, index_t n, Targets<T> y, const T* w,
                     const Regularisers& reg, std::int64_t step, T* value,
                     StopCheck* stop = nullptr) noexcept;

// The objective as objective_value (its value in *value) and its gradient: dw[i] (shape of
// W_i) and db[i] are filled (loss_gradient, backward, then l2_gradient). false if `stop` said
// stop (the gradients are then incomplete, *value unset). *value is written before the
// backward pass: a caller can test it for finiteness after a true return.
template <class T>
bool objective_gradient(Network<T>& net, const T* x, index_t n, Targets<T> y, const T* w,
                        const Regularisers& reg, std::int64_t step, T* const* dw, T* const* db,
                        T* value, StopCheck* stop = nullptr) noexcept;

// objective_gradient's step from the output layer: the batch's objective (the value
// objective_gradient writes) from the output logits z and activations a (n x n_outputs; a as
// Network::forward leaves it) of the n rows, and dL/dZ of the output layer into dz (n x
// n_outputs). sum_w = sample_weight_sum(w, n). Uses the network's loss, output activation,
// target buffer (label smoothing) and weights (the l2 penalty); the lane groups of
// train_epoch_many (train_lanes.hpp) call it per network.
template <class T>
T output_objective(Network<T>& net, const T* z, const T* a, index_t n, Targets<T> y,
                   const T* w, const Regularisers& reg, double sum_w, T* dz) noexcept;

}  // namespace gd
