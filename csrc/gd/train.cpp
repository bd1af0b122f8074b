// The epoch loop. Everything it needs is allocated before the first step; a step allocates
// nothing and calls no virtual function.
#include "train.hpp"

#include "finite.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gd {
namespace {

// True when rows[0..n) are consecutive (first, first + 1, ...): the batch can be read in place.
inline bool consecutive(const std::int64_t* rows, index_t n) noexcept {
    const std::int64_t first = rows[0];
    for (index_t i = 1; i < n; ++i)
        if (rows[i] != first + i) return false;
    return true;
}

// A batch's inputs, targets and weights: views into the data, or its rows gathered into the
// network's batch buffers.
template <class T>
struct Batch {
    const T* x;
    Targets<T> y;
    const T* w;
};

template <class T>
Batch<T> gather(Network<T>& net, const EpochData<T>& data, const std::int64_t* rows,
                index_t n) noexcept {
    const index_t n_in = net.n_inputs();
    const index_t n_out = net.n_outputs();
    if (consecutive(rows, n)) {
        const index_t first = index_t(rows[0]);
        Batch<T> b{data.x + first * n_in, {}, nullptr};
        if (data.y.labels) b.y.labels = data.y.labels + first;
        else b.y.values = data.y.values + first * n_out;
        if (data.sample_weight) b.w = data.sample_weight + first;
        return b;
    }
    T* x = net.batch_x();
    for (index_t r = 0; r < n; ++r)
        std::memcpy(x + r * n_in, data.x + rows[r] * n_in, sizeof(T) * std::size_t(n_in));
    Batch<T> b{x, {}, nullptr};
    if (data.y.labels) {
        std::int64_t* labels = net.batch_labels();
        for (index_t r = 0; r < n; ++r) labels[r] = data.y.labels[rows[r]];
        b.y.labels = labels;
    } else {
        T* y = net.batch_y();
        for (index_t r = 0; r < n; ++r)
            std::memcpy(y + r * n_out, data.y.values + rows[r] * n_out,
                        sizeof(T) * std::size_t(n_out));
        b.y.values = y;
    }
    if (data.sample_weight) {
        T* w = net.batch_weights();
        for (index_t r = 0; r < n; ++r) w[r] = data.sample_weight[rows[r]];
        b.w = w;
    }
    return b;
}

template <class T>
bool parameters_finite(const Network<T>& net) {
    for (index_t i = 0; i < net.n_layers(); ++i) {
        const DenseLayer<T>& l = net.layer(i);
        if (!all_finite(l.weights, l.n_inputs * l.n_outputs) || !all_finite(l.bias, l.n_outputs))
            return false;
    }
    return true;
}

}  // namespace

template <class T>
EpochResult train_epoch(Network<T>& net, const EpochData<T>& data, index_t batch_size,
                        const OptimizerConfig& config, const Regularisers& reg, T* const* state,
                        std::int64_t* step, const Interrupt& interrupt) {
    EpochResult result;
    if (data.n_order <= 0 || batch_size <= 0) {
        result.loss = std::numeric_limits<double>::quiet_NaN();  // no batch: no loss
        return result;
    }

    // Workspace for the largest batch of this epoch (a no-op once it is big enough).
    const index_t max_rows = std::min(batch_size, data.n_order);
    net.reserve(max_rows);
    net.reserve_batch(max_rows, data.y.labels != nullptr, data.sample_weight != nullptr);
    if (reg.dropout) net.reserve_dropout(max_rows);

    const index_t n_layers = net.n_layers();
    const int n_slots = config.n_slots();
    T* const* dw = net.weight_gradients();
    T* const* db = net.bias_gradients();

    double weighted_loss = 0.0;  // sum_b loss_b w_b
    double total_weight = 0.0;   // sum_b w_b
    StopCheck stop(interrupt);

    for (index_t start = 0; start < data.n_order; start += batch_size) {
        const index_t rows = std::min(batch_size, data.n_order - start);

        // 1. Run: gather the batch (objective_gradient passes it forward). A batch of zero
        //    total sample weight has no gradient to follow: it is skipped (no update, no
        //    step, not in the loss).
        const Batch<T> batch = gather(net, data, data.order + start, rows);
        double batch_weight = double(rows);
        if (batch.w) {
            batch_weight = 0.0;
            for (index_t r = 0; r < rows; ++r) batch_weight += double(batch.w[r]);
        }
        if (batch_weight > 0.0) {
            // A stop asked for during the forward or backward pass drops this batch: nothing
            // has been updated yet. The dropout masks are those of step t.
            const std::int64_t t = step[0] + 1;
            // 2.-3. Forward, compute the error (the batch's objective and dL/dZ of the output
            //    layer) and backpropagate into the network's gradient buffers.
            T loss = T(0);
            if (!objective_gradient(net, batch.x, rows, batch.y, batch.w, reg, t, dw, db, &loss,
                                    &stop))
                break;
            if (!std::isfinite(loss)) {
                result.loss = double(loss);  // stop before this batch's update
                return result;
            }

            // 4. Update every parameter in place (W0, b0, W1, b1, ...), then count the step.
            for (index_t i = 0; i < n_layers; ++i) {
                const DenseLayer<T>& l = net.layer(i);
                T* const* w_state = state + (2 * i) * n_slots;
                T* const* b_state = state + (2 * i + 1) * n_slots;
                optimizer_update(config, t, l.weights, dw[i], w_state, l.n_inputs * l.n_outputs);
                optimizer_update(config, t, l.bias, db[i], b_state, l.n_outputs);
            }
            step[0] = t;
            ++result.steps;
            weighted_loss += double(loss) * batch_weight;
            total_weight += batch_weight;
        }

        // Between batches: let the caller stop us (at most every interrupt.interval).
        if (start + rows < data.n_order && stop()) break;
    }
    result.interrupted = stop.stopped();
    result.loss = total_weight > 0.0 ? weighted_loss / total_weight
                                     : std::numeric_limits<double>::quiet_NaN();
    // The last update may have overflowed with a finite loss: the epoch then diverged too.
    if (result.steps > 0 && !parameters_finite(net))
        result.loss = std::numeric_limits<double>::quiet_NaN();
    return result;
}

template EpochResult train_epoch<float>(Network<float>&, const EpochData<float>&, index_t,
                                        const OptimizerConfig&, const Regularisers&,
                                        float* const*, std::int64_t*, const Interrupt&);
template EpochResult train_epoch<double>(Network<double>&, const EpochData<double>&, index_t,
                                         const OptimizerConfig&, const Regularisers&,
                                         double* const*, std::int64_t*, const Interrupt&);

}  // namespace gd
