// One epoch of mini-batch gradient descent over a Network, updating parameters and optimizer
// state in place.
#pragma once

#include <cstdint>

#include "codes.hpp"
#include "interrupt.hpp"
#include "losses.hpp"
#include "network.hpp"
#include "objective.hpp"
#include "optimizers.hpp"

namespace gd {

// The data of an epoch: x (n_rows x n_inputs), targets, optional sample weights (n_rows,), and
// `order` (n_order,), the rows in the order they are visited; all indices in [0, n_rows).
template <class T>
struct EpochData {
    const T* x = nullptr;
    index_t n_rows = 0;
    Targets<T> y;
    const T* sample_weight = nullptr;
    const std::int64_t* order = nullptr;
    index_t n_order = 0;
};

struct EpochResult {
    double loss = 0.0;         // sum_b(loss_b w_b) / sum_b(w_b) (NaN if no batch had weight
                               // or a parameter is not finite after the last update),
                               // or the first non-finite loss_b
    std::int64_t steps = 0;    // optimizer steps taken
    bool interrupted = false;  // the Interrupt hook asked to stop: the epoch ended early
};

// Batches order[0:bs], order[bs:2bs], ...; per batch: run, compute error, backpropagate
// (objective_gradient with the regularisers `reg`: label smoothing, the l2 penalty over the
// batch's weight sum, dropout masks of the step about to be taken, t = step[0] + 1), update.
// loss_b is the batch's objective (data loss + l2 penalty). A batch whose sample weights sum
// to zero is skipped (no update, no step). Stops before the update of a batch whose loss is
// not finite. `state` holds
// config.n_slots() arrays per parameter (W0, b0, W1, b1, ...); step[0] counts the steps taken
// and is incremented after each. The caller has validated every shape and index.
// `interrupt` is polled between batches, layers and row panels of large products; when it asks
// to stop, the batch in progress is dropped before its update, so the parameters, the state and
// step[0] are those after a whole number of steps.
// May throw std::bad_alloc while growing the workspace, before anything is updated.
template <class T>
EpochResult train_epoch(Network<T>& net, const EpochData<T>& data, index_t batch_size,
                        const OptimizerConfig& config, const Regularisers& reg, T* const* state,
                        std::int64_t* step, const Interrupt& interrupt);

}  // namespace gd
