// Lane groups: Network::forward, objective_gradient and Network::backward for several networks
// at once, in the same order of operations (network.cpp, objective.cpp).
#include "train_lanes.hpp"

#include <algorithm>
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

std::atomic<std::int64_t> lane_epoch_count{0};

// The kernels' lane product and column sums for groups of `lanes` lanes.
template <class T>
void lane_gemm(index_t lanes, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
               const T* a, index_t lda, bool a_shared, const T* b, index_t ldb, T* c, index_t ldc,
               kernels::Epilogue<T> ep = {}) noexcept {
    const int wide = lanes == kernels::lane_count<T> ? 1 : 0;
    if constexpr (std::is_same_v<T, float>)
        kernels::table().lane_sgemm[wide](trans_a, trans_b, m, n, k, a, lda, a_shared, b, ldb, c,
                                          ldc, ep);
    else
        kernels::table().lane_dgemm[wide](trans_a, trans_b, m, n, k, a, lda, a_shared, b, ldb, c,
                                          ldc, ep);
}

template <class T>
void lane_column_sums(index_t lanes, const T* x, index_t rows, index_t cols, T* s) noexcept {
    const int wide = lanes == kernels::lane_count<T> ? 1 : 0;
    if constexpr (std::is_same_v<T, float>)
        kernels::table().lane_column_sums_f32[wide](x, rows, cols, s);
    else
        kernels::table().lane_column_sums_f64[wide](x, rows, cols, s);
}

// A lane array of `lanes` lanes from one plain array per lane, and back: element by element,
// so that each element's lanes (one cache line) are written together.
template <class T>
void interleave(const T* const* plain, index_t size, index_t lanes, T* lane_array) noexcept {
    for (index_t e = 0; e < size; ++e)
        for (index_t l = 0; l < lanes; ++l) lane_array[e * lanes + l] = plain[l][e];
}
template <class T>
void deinterleave(const T* lane_array, index_t size, index_t lanes, T* const* plain) noexcept {
    for (index_t e = 0; e < size; ++e)
        for (index_t l = 0; l < lanes; ++l) plain[l][e] = lane_array[e * lanes + l];
}

// Lane l of a lane array of `lanes` lanes from a plain one, and back.
template <class T>
void to_lane(const T* plain, index_t size, index_t lanes, std::size_t l, T* lane_array) noexcept {
    for (index_t e = 0; e < size; ++e) lane_array[e * lanes + index_t(l)] = plain[e];
}
template <class T>
void from_lane(const T* lane_array, index_t size, index_t lanes, std::size_t l,
               T* plain) noexcept {
    for (index_t e = 0; e < size; ++e) plain[e] = lane_array[e * lanes + index_t(l)];
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
LaneGroup<T>::LaneGroup(std::vector<EpochRun<T>*> runs, std::vector<const EpochJob<T>*> jobs,
                        index_t lanes)
    : runs_(std::move(runs)), jobs_(std::move(jobs)), lanes_(lanes), live_(runs_.size(), 1),
      lead_job_(*jobs_.front()), lead_(*lead_job_.net) {
    const index_t rows = batch_rows(lead_job_).first;
    const std::size_t n = std::size_t(lead_.n_layers());
    w_.resize(n);
    b_.resize(n);
    z_.resize(n);
    a_.resize(n);
    dw_.resize(n);
    db_.resize(n);
    index_t width = 0, largest = 0;  // the widest layer, the largest weight matrix
    for (std::size_t i = 0; i < n; ++i) {
        const DenseLayer<T>& l = lead_.layer(index_t(i));
        const auto lanes = [this](index_t size) { return std::size_t(size * lanes_); };
        w_[i].assign(lanes(l.n_inputs * l.n_outputs), T(0));
        dw_[i].assign(lanes(l.n_inputs * l.n_outputs), T(0));
        b_[i].assign(lanes(l.n_outputs), T(0));
        db_[i].assign(lanes(l.n_outputs), T(0));
        z_[i].assign(lanes(rows * l.n_outputs), T(0));
        if (!fused(l.activation)) a_[i].assign(lanes(rows * l.n_outputs), T(0));
        width = std::max({width, l.n_inputs, l.n_outputs});
        largest = std::max(largest, l.n_inputs * l.n_outputs);
    }
    for (auto& g : grad_) g.assign(std::size_t(rows * width * lanes_), T(0));
    sink_.assign(std::size_t(largest), T(0));
    read_.assign(std::size_t(2 * lanes_), nullptr);
    write_.assign(std::size_t(2 * lanes_), nullptr);
    const std::size_t out = std::size_t(rows * lead_.n_outputs());
    z_out_.assign(out, T(0));
    a_out_.assign(out, T(0));
    dz_out_.assign(out, T(0));
    loss_.assign(runs_.size(), T(0));
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
    for (;;) {
        if (stop.stopped() || !any_left()) break;
        step();
        if (any_left() && stop()) break;
    }
    if (stop.stopped())
        for (EpochRun<T>* run : runs_) run->end();
}

// Network::forward (no dropout, output_activation false) for every lane.
template <class T>
void LaneGroup<T>::forward(const T* x, index_t rows) noexcept {
    const index_t last = lead_.n_layers() - 1;
    const T* a_prev = x;  // the batch, shared by the lanes
    for (index_t i = 0; i <= last; ++i) {
        const DenseLayer<T>& l = lead_.layer(i);
        T* z = z_[std::size_t(i)].data();
        T* a = fused(l.activation) ? z : a_[std::size_t(i)].data();
        lane_gemm(lanes_, false, false, rows, l.n_outputs, l.n_inputs, a_prev, l.n_inputs, i == 0,
                  w_[std::size_t(i)].data(), l.n_outputs, z, l.n_outputs,
                  {b_[std::size_t(i)].data(), l.activation == Activation::relu, nullptr, 0});
        // (Softmax, on the output layer only, is row-wise: applied per lane, step().)
        if (!fused(l.activation) && l.activation != Activation::softmax)
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
            prev ? (fused(prev->activation) ? z_prev : a_[std::size_t(i - 1)].data()) : x;
        lane_gemm(lanes_, true, false, l.n_inputs, l.n_outputs, rows, a_prev, l.n_inputs, i == 0,
                  dz, l.n_outputs, dw_[std::size_t(i)].data(), l.n_outputs);
        lane_column_sums(lanes_, dz, rows, l.n_outputs, db_[std::size_t(i)].data());
        if (prev == nullptr) break;
        const bool relu_prev = prev->activation == Activation::relu;
        lane_gemm(lanes_, false, true, rows, l.n_inputs, l.n_outputs, dz, l.n_outputs, false,
                  w_[std::size_t(i)].data(), l.n_outputs, other, l.n_inputs,
                  {nullptr, false, relu_prev ? a_prev : nullptr, l.n_inputs});
        if (!relu_prev)
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
    // the group's networks repeat lane 0's).
    const index_t n_layers = lead_.n_layers();
    for (index_t i = 0; i < n_layers; ++i) {
        const DenseLayer<T>& layer = lead_.layer(i);
        for (index_t l = 0; l < lanes_; ++l) {
            const DenseLayer<T>& own = jobs_[std::size_t(l) < jobs_.size() ? l : 0]->net->layer(i);
            read_[std::size_t(l)] = own.weights;
            read_[std::size_t(lanes_ + l)] = own.bias;
        }
        interleave(read_.data(), layer.n_inputs * layer.n_outputs, lanes_,
                   w_[std::size_t(i)].data());
        interleave(read_.data() + lanes_, layer.n_outputs, lanes_, b_[std::size_t(i)].data());
    }
    forward(b.x, rows);

    // The output layer, lane by lane: objective_gradient's output_objective.
    const DenseLayer<T>& out = lead_.layer(n_layers - 1);
    const index_t out_size = rows * out.n_outputs;
    const T* z_lanes = z_.back().data();
    const T* a_lanes = fused(out.activation) ? z_lanes : a_.back().data();
    const double sum_w = sample_weight_sum(b.w, rows);
    const Regularisers& reg = lead_job_.reg;
    for (std::size_t l = 0; l < runs_.size(); ++l) {
        if (!live_[l]) continue;
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

    // Each live lane's gradient into its network's buffers (the others' into sink_), then its
    // own update.
    for (index_t i = 0; i < n_layers; ++i) {
        const DenseLayer<T>& layer = lead_.layer(i);
        for (index_t l = 0; l < lanes_; ++l) {
            const bool own = std::size_t(l) < runs_.size() && live_[std::size_t(l)];
            Network<T>* net = own ? jobs_[std::size_t(l)]->net : nullptr;
            write_[std::size_t(l)] = own ? net->weight_gradients()[i] : sink_.data();
            write_[std::size_t(lanes_ + l)] = own ? net->bias_gradients()[i] : sink_.data();
        }
        deinterleave(dw_[std::size_t(i)].data(), layer.n_inputs * layer.n_outputs, lanes_,
                     write_.data());
        deinterleave(db_[std::size_t(i)].data(), layer.n_outputs, lanes_, write_.data() + lanes_);
    }
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
