// Lane groups: the epochs of up to lane_count<T> networks of one shape on the same data, run a
// batch at a time in one pass. Each network is a lane of the kernels' lane products
// (kernels_lanes.hpp) and of the elementwise passes, and its loss, l2 gradient and update are
// its own calls (output_objective, l2_gradient, EpochRun::take_step), so every network's
// results equal its own train_epoch's bit for bit. train_epoch_many (train.hpp) runs the
// networks that lane_eligible and same_lanes admit in groups: a sweep of small networks then
// shares the work of a step (the batch, the loop overhead, one vector instruction for every
// lane) instead of paying it per network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "train.hpp"

namespace gd {

// True when the job's epoch can be a lane: no dropout, and every product of its batches (of
// both sizes, the full one and the last) goes to the own kernels (blas::use_own_kernel), whose
// order the lane products repeat; OpenBLAS's cannot be repeated.
template <class T>
bool lane_eligible(const EpochJob<T>& job) noexcept;

// True when two eligible jobs can share a group: the same layer sizes, activations and loss, the
// same data (the same arrays, the same visiting order) and batch size, and the same
// regularisers. Their optimizers may differ in anything.
template <class T>
bool same_lanes(const EpochJob<T>& a, const EpochJob<T>& b) noexcept;

// Network epochs run as lanes since the process started (for tests and benchmarks: did
// train_epoch_many group them?).
std::int64_t lane_epochs() noexcept;

// The fewest networks worth a group: below it, running them one at a time is faster.
inline constexpr std::size_t min_lanes = 2;

template <class T>
class LaneGroup {
public:
    // The epochs `runs` of `jobs` (1 to `lanes` of them, each job lane_eligible and same_lanes
    // as the first) in lane vectors of `lanes` lanes (kernels::lane_count<T> or half of it):
    // allocates the lanes' workspace for one batch. May throw std::bad_alloc.
    LaneGroup(std::vector<EpochRun<T>*> runs, std::vector<const EpochJob<T>*> jobs,
              index_t lanes);
    // Every lane's epoch, a batch at a time. `stop` is asked between batches; when it says
    // stop, every lane's epoch ends there.
    void run(StopCheck& stop) noexcept;

private:
    bool any_left() const noexcept;
    // A float32 tanh hidden layer: its product applies tanh to the rows it finishes, and the
    // product into its gradient tanh's backward (kernels::LaneRows), instead of two passes.
    bool lane_tanh(index_t layer) const noexcept;
    // The layer's activation is applied by its product (gd::fused's, or lane_tanh): its
    // activations are in z_, and a_ is not used.
    bool in_product(index_t layer) const noexcept;
    void step() noexcept;
    // Lane updates (lane_update_): the lanes' parameters and momentum buffers stay in the lane
    // arrays for the whole epoch. load_lanes fills them; store_lane(l) writes lane l back to its
    // network and optimizer state and clears it (zeros, and a rate of zero: it stays zero).
    void load_lanes() noexcept;
    void store_lane(std::size_t l) noexcept;
    void update_lanes(double batch_weight) noexcept;
    void forward(const T* x, index_t rows) noexcept;
    void backward(const T* x, index_t rows) noexcept;

    std::vector<EpochRun<T>*> runs_;  // lane l: runs_[l], the epoch of jobs_[l]
    std::vector<const EpochJob<T>*> jobs_;
    index_t lanes_;                   // values per element of the lane arrays
    std::vector<char> live_;          // the lanes still training this step
    const EpochJob<T>& lead_job_;     // lane 0's: the data, batch size and regularisers
    Network<T>& lead_;                // lane 0's network: the shape, and the gather buffers
    // Lane arrays (element e of lane l at e * lane_count + l), per layer.
    std::vector<std::vector<T>> w_, b_, z_, a_, dw_, db_;
    std::vector<std::vector<T>> vw_, vb_;  // momentum buffers (lane updates with momentum)
    // The parameters W0, b0, W1, b1, ... in the order of the optimizer's state: their lane
    // arrays (buf null without lane updates with momentum) and their size per lane.
    struct Param {
        T* lanes;
        T* grad;
        T* buf;
        index_t size;
    };
    std::vector<Param> params_;
    std::vector<T> grad_[2];          // dL/dZ of a layer and dL/dA of the one before
    // One lane's output layer, de-interleaved: logits, activations, dL/dZ.
    std::vector<T> z_out_, a_out_, dz_out_;
    std::vector<T> loss_;             // each lane's objective of this step
    std::vector<T> sink_;             // where the gradients of lanes without a network go
    index_t start_ = 0;               // first position in the order of the next batch
    // Lane updates: when every lane's optimizer is SGD alike (momentum or not, nesterov or
    // not, weight decay or not) and there is no l2 penalty, one pass over the lane arrays
    // updates all lanes (sgd_pass.hpp's lane pass), each with its own rates, instead of
    // copying the parameters out and in at every step. Else each lane's update is its own
    // call (EpochRun::take_step).
    bool lane_update_ = false;
    std::vector<T> lr_, mu_, wd_;  // per lane
    std::vector<char> stored_;     // lane written back (lane_update_)
    // bce without an l2 penalty: every lane's loss and dL/dZ in one pass over the lane arrays
    // (bce_gradient_lanes) instead of one call per network on its de-interleaved outputs.
    bool lane_loss_ = false;
    std::vector<T> terms_;         // its scratch
};

}  // namespace gd
