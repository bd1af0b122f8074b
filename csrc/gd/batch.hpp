// A batch of an epoch: its rows of the data, read in place when they are consecutive, else
// gathered into a network's batch buffers (train.cpp, train_lanes.cpp).
#pragma once

#include <cstdint>
#include <cstring>

#include "network.hpp"
#include "train.hpp"

namespace gd::batch {

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

// The batch's total sample weight in double: its row count without weights.
template <class T>
double total_weight(const Batch<T>& b, index_t n) noexcept {
    if (!b.w) return double(n);
    double sum = 0.0;
    for (index_t r = 0; r < n; ++r) sum += double(b.w[r]);
    return sum;
}

}  // namespace gd::batch
