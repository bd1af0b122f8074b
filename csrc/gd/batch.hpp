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

// dst's n rows of `width` elements: rows[0], rows[1], ... of src. Short rows by a loop: a
// call of memcpy per row of a few bytes cost more than the copy (a tenth of a tiny network's
// step).
template <class T>
void copy_rows(T* dst, const T* src, const std::int64_t* rows, index_t n, index_t width) noexcept {
    if (width <= 8) {
        for (index_t r = 0; r < n; ++r) {
            const T* row = src + rows[r] * width;
            for (index_t c = 0; c < width; ++c) dst[r * width + c] = row[c];
        }
        return;
    }
    for (index_t r = 0; r < n; ++r)
        std::memcpy(dst + r * width, src + rows[r] * width, sizeof(T) * std::size_t(width));
}

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
    copy_rows(x, data.x, rows, n, n_in);
    Batch<T> b{x, {}, nullptr};
    if (data.y.labels) {
        std::int64_t* labels = net.batch_labels();
        for (index_t r = 0; r < n; ++r) labels[r] = data.y.labels[rows[r]];
        b.y.labels = labels;
    } else {
        T* y = net.batch_y();
        copy_rows(y, data.y.values, rows, n, n_out);
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
