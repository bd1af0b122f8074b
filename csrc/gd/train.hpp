// One epoch of mini-batch gradient descent over a Network, updating parameters and optimizer
// state in place.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

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

// One epoch of one network, a batch at a time: train_epoch's loop as an object, so that
// train_epoch_many can interleave the epochs of several networks. The caller has reserved the
// network's workspace for min(batch_size, data.n_order) rows (batch buffers, dropout). Nothing is
// allocated; step() does exactly what one iteration of train_epoch's loop does.
template <class T>
class EpochRun {
public:
    EpochRun(Network<T>& net, const EpochData<T>& data, index_t batch_size,
             const OptimizerConfig& config, const Regularisers& reg, T* const* state,
             std::int64_t* step) noexcept;

    // True while batches are left and the epoch has not ended on a non-finite loss or a stop.
    bool more() const noexcept { return !ended_ && start_ < data_.n_order; }
    // The next batch (gather, objective and gradient, update). `stop` is asked inside the
    // passes; when it says stop the batch is dropped before its update and the epoch ends.
    void step(StopCheck* stop) noexcept;
    // End the epoch here (a stop between batches).
    void end() noexcept { ended_ = true; }
    // The rows of the next batch.
    index_t next_rows() const noexcept { return std::min(batch_size_, data_.n_order - start_); }

    // For a lane group (train_lanes.hpp), which runs the batch itself: skip the next batch's
    // rows (before its update) ...
    void advance() noexcept { start_ += next_rows(); }
    // ... and finish its step: `loss` is the batch's objective, the network's gradient buffers
    // hold its gradient. A non-finite loss ends the epoch before the update; else the update,
    // and the step is counted with the batch's total sample weight.
    void take_step(T loss, double batch_weight) noexcept;
    // take_step without the update, for a lane group that updates the network's parameters
    // itself: true if the step counts (then the caller updates), false if a non-finite loss
    // ended the epoch.
    bool count_step(T loss, double batch_weight) noexcept;
    // The optimizer's configuration of this epoch.
    const OptimizerConfig& config() const noexcept { return config_; }
    // The optimizer's state arrays (config().n_slots() per parameter: W0, b0, W1, b1, ...).
    T* const* state() const noexcept { return state_; }
    // The epoch's result once it ended; `interrupted`: a stop ended it.
    EpochResult result(bool interrupted) const noexcept;

private:
    Network<T>& net_;
    EpochData<T> data_;
    index_t batch_size_;
    OptimizerConfig config_;
    Regularisers reg_;
    T* const* state_;
    std::int64_t* step_;
    index_t start_ = 0;          // first position in data.order of the next batch
    bool ended_ = false;
    double non_finite_ = 0.0;    // the non-finite batch loss that ended the epoch
    bool has_non_finite_ = false;
    double weighted_loss_ = 0.0;  // sum_b loss_b w_b
    double total_weight_ = 0.0;   // sum_b w_b
    std::int64_t steps_ = 0;
};

// The epoch of one network in train_epoch_many: train_epoch's arguments and its result.
template <class T>
struct EpochJob {
    Network<T>* net = nullptr;
    EpochData<T> data;
    index_t batch_size = 0;
    OptimizerConfig config;
    Regularisers reg;
    T* const* state = nullptr;
    std::int64_t* step = nullptr;
    EpochResult result;  // out
};

// train_epoch for every job, each network exactly as its own train_epoch call (the same
// batches, the same arithmetic: equal results bit for bit). The networks must be distinct, and
// their workspaces reserved as train_epoch needs. Networks of one shape on the same data and
// batches run as lane groups (train_lanes.hpp: up to lane_count<T> networks in one pass per
// batch); the rest in chunks of about (their number) / (4 n_threads) networks, interleaved batch
// by batch (round r runs batch r of each). Up to n_threads threads (the caller's and the core's
// helper threads, threads.hpp) take the groups and chunks in turn (a thread on a busy core takes
// fewer). Only the caller's thread polls `interrupt`;
// the others stop, at a whole step, soon after it says stop. A stop ends every job's epoch
// (result.interrupted; a job no thread had begun takes no step). Jobs with no rows or
// batch_size <= 0 get train_epoch's NaN. Fewer helpers than asked (the pool has one per core
// but the caller's) only means fewer threads: the results are the same.
template <class T>
void train_epoch_many(std::vector<EpochJob<T>>& jobs, int n_threads, const Interrupt& interrupt);

}  // namespace gd
