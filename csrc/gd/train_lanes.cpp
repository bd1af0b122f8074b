// Lane groups: Network::forward, objective_gradient and Network::backward for several networks
// at once, in the same order of operations (network.cpp, objective.cpp).
#include "train_lanes.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <type_traits>
#include <utility>

#include "activations.hpp"
#include "batch.hpp"
#include "blas.hpp"
#include "kernels.hpp"

namespace gd {
namespace {

#include "sgd_pass.hpp"

std::atomic<std::int64_t> lane_epoch_count{0};

// The kernels' lane product and column sums for groups of `lanes` lanes.
template <class T>
void lane_gemm(index_t lanes, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
               const T* a, index_t lda, bool a_shared, const T* b, index_t ldb, T* c, index_t ldc,
               kernels::Epilogue<T> ep = {}, kernels::LaneRows<T> rows = {}) noexcept {
    const int wide = lanes == kernels::lane_count<T> ? 1 : 0;
    if constexpr (std::is_same_v<T, float>)
        kernels::table().lane_sgemm[wide](trans_a, trans_b, m, n, k, a, lda, a_shared, b, ldb, c,
                                          ldc, ep, rows);
    else
        kernels::table().lane_dgemm[wide](trans_a, trans_b, m, n, k, a, lda, a_shared, b, ldb, c,
                                          ldc, ep, rows);
}

template <class T>
void lane_column_sums(index_t lanes, const T* x, index_t rows, index_t cols, T* s) noexcept {
    const int wide = lanes == kernels::lane_count<T> ? 1 : 0;
    if constexpr (std::is_same_v<T, float>)
        kernels::table().lane_column_sums_f32[wide](x, rows, cols, s);
    else
        kernels::table().lane_column_sums_f64[wide](x, rows, cols, s);
}

// The SGD update over lane arrays of `lanes` lanes: float32 by the kernels table (as
// optimizers.cpp's sgd), float64 here (as optimizers.cpp's sgd_update, with the same flags).
void lane_sgd(index_t lanes, float* p, const float* g, float* buf, index_t elements,
              const float* lr, const float* mu, const float* wd, bool nesterov,
              bool decay) noexcept {
    const int wide = lanes == kernels::lane_count<float> ? 1 : 0;
    kernels::table().lane_sgd_f32[wide](p, g, buf, elements, lr, mu, wd, nesterov, decay);
}
void lane_sgd(index_t lanes, double* p, const double* g, double* buf, index_t elements,
              const double* lr, const double* mu, const double* wd, bool nesterov,
              bool decay) noexcept {
    constexpr index_t full = kernels::lane_count<double>;
    if (lanes == full)
        sgd_lane_update<double, full>(p, g, buf, elements, lr, mu, wd, nesterov, decay);
    else
        sgd_lane_update<double, full / 2>(p, g, buf, elements, lr, mu, wd, nesterov, decay);
}

// Lane l of a lane array set to zero.
template <class T>
void clear_lane(T* lane_array, index_t size, index_t lanes, std::size_t l) noexcept {
    for (index_t e = 0; e < size; ++e) lane_array[e * lanes + index_t(l)] = T(0);
}

// Lane l of a lane array of `lanes` lanes from a plain one, and back (restrict: the loop is
// one load and one store per element, no reload of a pointer a store might have changed).
template <class T>
void to_lane(const T* __restrict plain, index_t size, index_t lanes, std::size_t l,
             T* __restrict lane_array) noexcept {
    for (index_t e = 0; e < size; ++e) lane_array[e * lanes + index_t(l)] = plain[e];
}
template <class T>
void from_lane(const T* __restrict lane_array, index_t size, index_t lanes, std::size_t l,
               T* __restrict plain) noexcept {
    for (index_t e = 0; e < size; ++e) plain[e] = lane_array[e * lanes + index_t(l)];
}

// Parameter p of a network in the optimizer's order (W0, b0, W1, b1, ...), and its gradient.
template <class T>
T* parameter(const Network<T>& net, std::size_t p) noexcept {
    const DenseLayer<T>& layer = net.layer(index_t(p / 2));
    return p % 2 == 0 ? layer.weights : layer.bias;
}
template <class T>
T* gradient(Network<T>& net, std::size_t p) noexcept {
    const index_t i = index_t(p / 2);
    return p % 2 == 0 ? net.weight_gradients()[i] : net.bias_gradients()[i];
}

// The rows of the epoch's batches: the full batch and the last one (0 when it is full).
template <class T>
std::pair<index_t, index_t> batch_rows(const EpochJob<T>& job) noexcept {
    const index_t n = job.data.n_order, bs = job.batch_size;
    return {std::min(bs, n), n > bs ? n % bs : 0};
}

}  // namespace

std::int64_t lane_epochs() noexcept { return lane_epoch_count.load(std::memory_order_relaxed); }

template <class T>
bool lane_eligible(const EpochJob<T>& job) noexcept {
    if (job.reg.dropout != nullptr) return false;
    const Network<T>& net = *job.net;
    const auto [full, last] = batch_rows(job);
    using blas::Op;
    for (const index_t rows : {full, last}) {
        if (rows == 0) continue;
        for (index_t i = 0; i < net.n_layers(); ++i) {
            const index_t n_in = net.layer(i).n_inputs, n_out = net.layer(i).n_outputs;
            if (!blas::use_own_kernel(Op::none, Op::none, rows, n_out, n_in) ||
                !blas::use_own_kernel(Op::transpose, Op::none, n_in, n_out, rows) ||
                (i > 0 && !blas::use_own_kernel(Op::none, Op::transpose, rows, n_in, n_out)))
                return false;
        }
    }
    return true;
}

template <class T>
bool same_lanes(const EpochJob<T>& a, const EpochJob<T>& b) noexcept {
    const Network<T>& na = *a.net;
    const Network<T>& nb = *b.net;
    if (na.n_layers() != nb.n_layers() || na.loss() != nb.loss()) return false;
    for (index_t i = 0; i < na.n_layers(); ++i) {
        const DenseLayer<T>& la = na.layer(i);
        const DenseLayer<T>& lb = nb.layer(i);
        if (la.n_inputs != lb.n_inputs || la.n_outputs != lb.n_outputs ||
            la.activation != lb.activation)
            return false;
    }
    const EpochData<T>& da = a.data;
    const EpochData<T>& db = b.data;
    const Regularisers& ra = a.reg;
    const Regularisers& rb = b.reg;
    return da.x == db.x && da.n_rows == db.n_rows && da.y.values == db.y.values &&
           da.y.labels == db.y.labels && da.sample_weight == db.sample_weight &&
           da.n_order == db.n_order &&
           (da.order == db.order ||
            std::equal(da.order, da.order + da.n_order, db.order)) &&
           a.batch_size == b.batch_size && ra.l2 == rb.l2 &&
           ra.label_smoothing == rb.label_smoothing && ra.dropout == rb.dropout;
}

template <class T>
bool LaneGroup<T>::lane_tanh(index_t i) const noexcept {
    return std::is_same_v<T, float> && i < lead_.n_layers() - 1 &&
           lead_.layer(i).activation == Activation::tanh;
}

template <class T>
bool LaneGroup<T>::in_product(index_t i) const noexcept {
    return fused(lead_.layer(i).activation) || lane_tanh(i);
}

template <class T>
LaneGroup<T>::LaneGroup(std::vector<EpochRun<T>*> runs, std::vector<const EpochJob<T>*> jobs,
                        index_t lanes)
    : runs_(std::move(runs)), jobs_(std::move(jobs)), lanes_(lanes), live_(runs_.size(), 1),
      lead_job_(*jobs_.front()), lead_(*lead_job_.net) {
    // Lane updates when every lane's optimizer is SGD with the same cases as lane 0's, and no
    // l2 penalty (the objective's penalty reads the network's own weights).
    const OptimizerConfig& first = runs_.front()->config();
    const auto cases = [](const OptimizerConfig& c) {
        return std::array<bool, 4>{c.optimizer == Optimizer::sgd, c.momentum != 0.0, c.nesterov,
                                   c.weight_decay != 0.0};
    };
    lane_update_ = lead_job_.reg.l2 == 0.0 && cases(first)[0] &&
                   std::all_of(runs_.begin(), runs_.end(), [&](const EpochRun<T>* run) {
                       return cases(run->config()) == cases(first);
                   });
    const bool momentum = lane_update_ && first.momentum != 0.0;

    const index_t rows = batch_rows(lead_job_).first;
    const std::size_t n = std::size_t(lead_.n_layers());
    for (auto* arrays : {&w_, &b_, &z_, &a_, &dw_, &db_}) arrays->resize(n);
    if (momentum) {
        vw_.resize(n);
        vb_.resize(n);
    }
    index_t width = 0, largest = 0;  // the widest layer, the largest weight matrix
    for (std::size_t i = 0; i < n; ++i) {
        const DenseLayer<T>& l = lead_.layer(index_t(i));
        const index_t size = l.n_inputs * l.n_outputs;
        const auto lanes = [this](index_t elements) { return std::size_t(elements * lanes_); };
        w_[i].assign(lanes(size), T(0));
        dw_[i].assign(lanes(size), T(0));
        b_[i].assign(lanes(l.n_outputs), T(0));
        db_[i].assign(lanes(l.n_outputs), T(0));
        z_[i].assign(lanes(rows * l.n_outputs), T(0));
        if (!in_product(index_t(i))) a_[i].assign(lanes(rows * l.n_outputs), T(0));
        if (momentum) {
            vw_[i].assign(lanes(size), T(0));
            vb_[i].assign(lanes(l.n_outputs), T(0));
        }
        params_.push_back({w_[i].data(), dw_[i].data(), momentum ? vw_[i].data() : nullptr, size});
        params_.push_back(
            {b_[i].data(), db_[i].data(), momentum ? vb_[i].data() : nullptr, l.n_outputs});
        width = std::max({width, l.n_inputs, l.n_outputs});
        largest = std::max(largest, size);
    }
    for (auto& g : grad_) g.assign(std::size_t(rows * width * lanes_), T(0));
    sink_.assign(std::size_t(largest), T(0));
    const std::size_t out = std::size_t(rows * lead_.n_outputs());
    z_out_.assign(out, T(0));
    a_out_.assign(out, T(0));
    dz_out_.assign(out, T(0));
    loss_.assign(std::size_t(lanes_), T(0));
    lane_loss_ = lead_.loss() == Loss::bce && lead_job_.reg.l2 == 0.0;
    if (lane_loss_) terms_.assign(out * std::size_t(lanes_), T(0));
    if (lane_update_) {
        lr_.assign(std::size_t(lanes_), T(0));  // (lanes past the networks: zero, stay zero)
        mu_.assign(std::size_t(lanes_), T(0));
        wd_.assign(std::size_t(lanes_), T(0));
        stored_.assign(runs_.size(), 0);
    }
}

template <class T>
void LaneGroup<T>::load_lanes() noexcept {
    for (std::size_t l = 0; l < runs_.size(); ++l) {
        const Network<T>& net = *jobs_[l]->net;
        T* const* state = runs_[l]->state();  // (with momentum, its buffer per parameter)
        for (std::size_t p = 0; p < params_.size(); ++p) {
            const Param& param = params_[p];
            to_lane(parameter(net, p), param.size, lanes_, l, param.lanes);
            if (param.buf) to_lane(state[p], param.size, lanes_, l, param.buf);
        }
        // The rates as optimizers.cpp's sgd passes them to the pass.
        const OptimizerConfig& c = runs_[l]->config();
        lr_[l] = T(c.lr);
        mu_[l] = T(c.momentum);
        wd_[l] = T(c.weight_decay);
    }
}

template <class T>
void LaneGroup<T>::store_lane(std::size_t l) noexcept {
    const Network<T>& net = *jobs_[l]->net;
    T* const* state = runs_[l]->state();
    for (std::size_t p = 0; p < params_.size(); ++p) {
        const Param& param = params_[p];
        from_lane(param.lanes, param.size, lanes_, l, parameter(net, p));
        clear_lane(param.lanes, param.size, lanes_, l);
        // (The gradient too: a lane that ends on a non-finite loss has this step's in it.)
        clear_lane(param.grad, param.size, lanes_, l);
        if (param.buf) {
            from_lane(param.buf, param.size, lanes_, l, state[p]);
            clear_lane(param.buf, param.size, lanes_, l);
        }
    }
    lr_[l] = mu_[l] = wd_[l] = T(0);
    stored_[l] = 1;
}

// Each live lane's step (EpochRun::count_step; a lane whose loss is not finite ends, before
// its update, and is written back), then one SGD pass over the lane arrays. A lane without a
// network has zero parameters, a zero gradient and a zero rate, so the pass leaves it zero.
template <class T>
void LaneGroup<T>::update_lanes(double batch_weight) noexcept {
    for (std::size_t l = 0; l < runs_.size(); ++l)
        if (live_[l] && !runs_[l]->count_step(loss_[l], batch_weight)) store_lane(l);
    const OptimizerConfig& cases = runs_.front()->config();  // (every lane's alike)
    for (const Param& param : params_)
        lane_sgd(lanes_, param.lanes, param.grad, param.buf, param.size, lr_.data(), mu_.data(),
                 wd_.data(), cases.nesterov, cases.weight_decay != 0.0);
}

template <class T>
bool LaneGroup<T>::any_left() const noexcept {
    for (const EpochRun<T>* run : runs_)
        if (run->more()) return true;
    return false;
}

template <class T>
void LaneGroup<T>::run(StopCheck& stop) noexcept {
    lane_epoch_count.fetch_add(std::int64_t(runs_.size()), std::memory_order_relaxed);
    if (lane_update_) load_lanes();
    for (;;) {
        if (stop.stopped() || !any_left()) break;
        step();
        if (any_left() && stop()) break;
    }
    if (stop.stopped())
        for (EpochRun<T>* run : runs_) run->end();
    if (lane_update_)
        for (std::size_t l = 0; l < runs_.size(); ++l)
            if (!stored_[l]) store_lane(l);
}

// Network::forward (no dropout, output_activation false) for every lane.
template <class T>
void LaneGroup<T>::forward(const T* x, index_t rows) noexcept {
    const index_t last = lead_.n_layers() - 1;
    const T* a_prev = x;  // the batch, shared by the lanes
    for (index_t i = 0; i <= last; ++i) {
        const DenseLayer<T>& l = lead_.layer(i);
        T* z = z_[std::size_t(i)].data();
        T* a = in_product(i) ? z : a_[std::size_t(i)].data();
        kernels::LaneRows<T> then;
        then.tanh = lane_tanh(i);
        lane_gemm(lanes_, false, false, rows, l.n_outputs, l.n_inputs, a_prev, l.n_inputs, i == 0,
                  w_[std::size_t(i)].data(), l.n_outputs, z, l.n_outputs,
                  {b_[std::size_t(i)].data(), l.activation == Activation::relu, nullptr, 0},
                  then);
        // (Softmax, on the output layer only, is row-wise: applied per lane, step().)
        if (!in_product(i) && l.activation != Activation::softmax)
            activation_forward(l.activation, z, a, rows * lanes_, l.n_outputs);
        a_prev = a;
    }
}

// Network::backward from grad_[0] (dL/dZ of the output layer) into dw_ and db_.
template <class T>
void LaneGroup<T>::backward(const T* x, index_t rows) noexcept {
    T* dz = grad_[0].data();
    T* other = grad_[1].data();
    for (index_t i = lead_.n_layers(); i-- > 0;) {
        const DenseLayer<T>& l = lead_.layer(i);
        const DenseLayer<T>* prev = i > 0 ? &lead_.layer(i - 1) : nullptr;
        const T* z_prev = prev ? z_[std::size_t(i - 1)].data() : nullptr;
        const T* a_prev =
            prev ? (in_product(i - 1) ? z_prev : a_[std::size_t(i - 1)].data()) : x;
        lane_gemm(lanes_, true, false, l.n_inputs, l.n_outputs, rows, a_prev, l.n_inputs, i == 0,
                  dz, l.n_outputs, dw_[std::size_t(i)].data(), l.n_outputs);
        lane_column_sums(lanes_, dz, rows, l.n_outputs, db_[std::size_t(i)].data());
        if (prev == nullptr) break;
        const bool relu_prev = prev->activation == Activation::relu;
        const bool tanh_prev = lane_tanh(i - 1);
        kernels::LaneRows<T> then;
        then.tanh_of = tanh_prev ? a_prev : nullptr;
        lane_gemm(lanes_, false, true, rows, l.n_inputs, l.n_outputs, dz, l.n_outputs, false,
                  w_[std::size_t(i)].data(), l.n_outputs, other, l.n_inputs,
                  {nullptr, false, relu_prev ? a_prev : nullptr, l.n_inputs}, then);
        if (!relu_prev && !tanh_prev)
            activation_backward(prev->activation, z_prev, a_prev, other, other, rows * lanes_,
                                prev->n_outputs);
        std::swap(dz, other);
    }
}

template <class T>
void LaneGroup<T>::step() noexcept {
    // The batch: the lanes' common data, gathered once (into lane 0's batch buffers).
    const EpochData<T>& data = lead_job_.data;
    index_t rows = 0;
    for (std::size_t l = 0; l < runs_.size(); ++l) {
        live_[l] = runs_[l]->more();
        if (!live_[l]) continue;
        rows = runs_[l]->next_rows();
        runs_[l]->advance();
    }
    const index_t start = start_;
    start_ += rows;
    const batch::Batch<T> b = batch::gather(lead_, data, data.order + start, rows);
    const double batch_weight = batch::total_weight(b, rows);
    if (!(batch_weight > 0.0)) return;  // skipped, as EpochRun::step skips it

    // The parameters into lane arrays (a lane that ended keeps its last ones; the lanes past
    // the group's networks repeat lane 0's); with lane updates they are there already.
    for (std::size_t p = 0; p < params_.size() && !lane_update_; ++p)
        for (std::size_t l = 0; l < std::size_t(lanes_); ++l)
            to_lane(parameter(*jobs_[l < jobs_.size() ? l : 0]->net, p), params_[p].size, lanes_,
                    l, params_[p].lanes);
    forward(b.x, rows);

    // The output layer, lane by lane: objective_gradient's output_objective.
    const DenseLayer<T>& out = lead_.layer(lead_.n_layers() - 1);
    const index_t out_size = rows * out.n_outputs;
    const T* z_lanes = z_.back().data();
    const T* a_lanes = fused(out.activation) ? z_lanes : a_.back().data();
    const double sum_w = sample_weight_sum(b.w, rows);
    const Regularisers& reg = lead_job_.reg;
    if (lane_loss_) {  // (objective.cpp's loss_targets: bce smooths its targets)
        const Targets<T> y = reg.label_smoothing == 0.0
                                 ? b.y
                                 : smooth_targets(Loss::bce, b.y, rows, out.n_outputs,
                                                  reg.label_smoothing, lead_.target_buffer());
        bce_gradient_lanes(z_lanes, a_lanes, y.values, b.w, rows, out.n_outputs, lanes_,
                           terms_.data(), grad_[0].data(), loss_.data());
    }
    for (std::size_t l = 0; l < std::size_t(lanes_); ++l) {
        if (l >= runs_.size() || !live_[l]) {  // no gradient for a lane without a live network
            clear_lane(grad_[0].data(), out_size, lanes_, l);
            continue;
        }
        if (lane_loss_) continue;  // (its loss and dL/dZ are there already)
        T* z = z_out_.data();
        T* a = a_out_.data();
        from_lane(z_lanes, out_size, lanes_, l, z);
        if (fused(out.activation)) {
            a = z;
        } else if (out.activation == Activation::softmax) {
            if (lead_.loss() == Loss::cross_entropy) a = nullptr;  // the loss computes it
            else activation_forward(out.activation, z, a, rows, out.n_outputs);
        } else {
            from_lane(a_lanes, out_size, lanes_, l, a);
        }
        loss_[l] = output_objective(*jobs_[l]->net, z, a, rows, b.y, b.w, reg, sum_w,
                                    dz_out_.data());
        to_lane(dz_out_.data(), out_size, lanes_, l, grad_[0].data());
    }
    backward(b.x, rows);
    if (lane_update_) {
        update_lanes(batch_weight);
        return;
    }

    // Each live lane's gradient into its network's buffers (the others' into sink_), then its
    // own update.
    for (std::size_t p = 0; p < params_.size(); ++p)
        for (std::size_t l = 0; l < std::size_t(lanes_); ++l)
            from_lane(params_[p].grad, params_[p].size, lanes_, l,
                      l < runs_.size() && live_[l] ? gradient(*jobs_[l]->net, p) : sink_.data());
    for (std::size_t l = 0; l < runs_.size(); ++l) {
        if (!live_[l]) continue;
        Network<T>& net = *jobs_[l]->net;
        l2_gradient(net, reg.l2, sum_w, net.weight_gradients());
        runs_[l]->take_step(loss_[l], batch_weight);
    }
}

template bool lane_eligible<float>(const EpochJob<float>&) noexcept;
template bool lane_eligible<double>(const EpochJob<double>&) noexcept;
template bool same_lanes<float>(const EpochJob<float>&, const EpochJob<float>&) noexcept;
template bool same_lanes<double>(const EpochJob<double>&, const EpochJob<double>&) noexcept;
template class LaneGroup<float>;
template class LaneGroup<double>;

}  // namespace gd
