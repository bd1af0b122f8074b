// The full-batch objective of a network and its gradient: the one function full-batch solvers
// (L-BFGS) minimise through. (A regulariser added to the training loss belongs here, so that
// every solver sees it.)
#pragma once

#include "codes.hpp"
#include "interrupt.hpp"
#include "losses.hpp"
#include "network.hpp"

namespace gd {

// The loss of the network on all n rows of x (n x n_inputs) with targets y and sample weights
// (n,) or null, as loss_value computes it, and its gradient into dw[i] (shape of W_i) and db[i].
// The workspace must hold n rows (Network::reserve). stop (may be null) is asked between
// layers and row panels; when it says stop the result is NaN and the gradient incomplete.
template <class T>
double objective_gradient(Network<T>& net, const T* x, index_t n, Targets<T> y,
                          const T* sample_weight, T* const* dw, T* const* db,
                          StopCheck* stop) noexcept;

}  // namespace gd
