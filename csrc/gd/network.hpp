// A dense network over caller-owned parameters, with the workspace its passes run in.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "codes.hpp"
#include "dropout.hpp"
#include "interrupt.hpp"

namespace gd {

// Activations the dense product applies itself as it stores Z (A then lives in Z's buffer):
// the network's passes and the lane groups (train_lanes.cpp) follow the same rule.
inline bool fused(Activation act) noexcept {
    return act == Activation::identity || act == Activation::relu;
}

// One layer: non-owning views of W (n_inputs x n_outputs, row-major) and b (n_outputs,).
template <class T>
struct DenseLayer {
    T* weights = nullptr;
    T* bias = nullptr;
    index_t n_inputs = 0;
    index_t n_outputs = 0;
    Activation activation = Activation::identity;
};

// The network: the layers (non-owning), the loss, and a workspace that is allocated once and
// grown only when more rows than ever before come in. Not thread-safe: one call at a time.
// A workspace buffer that grows without initialising its elements: the first pass over a large
// batch then does not spend (seconds, for gigabytes) zero-filling memory it is about to
// overwrite before the first interrupt poll; the pages are touched by the interruptible
// products instead. Contents are not kept when it grows.
template <class E>
class Scratch {
public:
    // At least `size` elements. May throw std::bad_alloc (the old buffer is then kept).
    void grow(index_t size) {
        if (size <= size_) return;
        data_.reset(new E[std::size_t(size)]);  // allocated before the old one is freed
        size_ = size;
    }
    E* data() noexcept { return data_.get(); }
    const E* data() const noexcept { return data_.get(); }

private:
    std::unique_ptr<E[]> data_;
    index_t size_ = 0;
};

template <class T>
class Network {
public:
    // Throws std::invalid_argument when the layers do not chain, a pointer is null, softmax is
    // not on the last layer, or the loss does not fit the output (bce: sigmoid, cross_entropy:
    // softmax). The caller keeps the parameter buffers alive and in place.
    Network(std::vector<DenseLayer<T>> layers, Loss loss);

    index_t n_inputs() const noexcept { return layers_.front().n_inputs; }
    index_t n_outputs() const noexcept { return layers_.back().n_outputs; }
    index_t n_layers() const noexcept { return index_t(layers_.size()); }
    const DenseLayer<T>& layer(index_t i) const noexcept { return layers_[std::size_t(i)]; }
    Loss loss() const noexcept { return loss_; }

    // Grows the pass buffers (Z, A, gradients) to at least `rows` rows. May throw bad_alloc.
    void reserve(index_t rows);
    // Grows the batch gather buffers (X, Y or labels, weights) to `rows` rows.
    void reserve_batch(index_t rows, bool labels, bool weights);
    // Grows the dropout buffers (mask and dropped activations of every hidden layer) to `rows`
    // rows: needed before a forward pass with dropout. May throw bad_alloc.
    void reserve_dropout(index_t rows);
    index_t capacity() const noexcept { return capacity_; }
    // Bytes the workspace of a batch of `rows` rows takes (reserve and reserve_batch), for
    // messages.
    double workspace_bytes(index_t rows) const noexcept;

    // Forward pass of x (n x n_inputs), n <= capacity(). The output activations land in `out`
    // (n x n_outputs) when it is not null, else in the workspace.
    // With output_activation false and a softmax output under cross_entropy, the softmax is not
    // applied (the loss works from the logits): output_activations() is then null.
    // stop (may be null) is asked between layers and row panels of large products: returns
    // false if it said stop (the pass is then incomplete), else true.
    // dropout (may be null: none; needs reserve_dropout(n)): every hidden layer i with
    // dropout->rates[i] > 0 passes A_i * mask_i on to the next layer (inverted dropout,
    // dropout_mask of (seed, step, layer i)); A_i itself stays as it was, for the backward pass.
    bool forward(const T* x, index_t n, T* out = nullptr, bool output_activation = true,
                 StopCheck* stop = nullptr, const DropoutStep* dropout = nullptr) noexcept;
    // Output activations of x (n x n_inputs) into out (n x n_outputs), touching no member: any
    // number of calls may run at once (while no call changes the parameters). scratch holds
    // predict_scratch(n) elements. stop: as forward's.
    bool predict(const T* x, index_t n, T* out, T* scratch,
                 StopCheck* stop = nullptr) const noexcept;
    index_t predict_scratch(index_t n) const noexcept { return 2 * n * max_hidden_; }

    // The last forward pass's output logits and activations (n x n_outputs).
    const T* output_logits() const noexcept { return z_.back(); }
    const T* output_activations() const noexcept { return a_.back(); }

    // Where the loss writes dL/dZ of the output layer (capacity() x n_outputs) before backward.
    T* output_gradient() noexcept { return grad_[0].data(); }
    // Backward pass of the last forward(x, n, nullptr), from output_gradient(): fills
    // dw[i] (shape of W_i) and db[i]. Clobbers output_gradient(). stop: as forward's (false:
    // the gradients are incomplete). A layer that forward dropped out scales its dL/dA by the
    // same mask (and its successor's dW reads the dropped activations).
    bool backward(const T* x, index_t n, T* const* dw, T* const* db,
                  StopCheck* stop = nullptr) noexcept;

    // Room for the targets of a batch with label smoothing (capacity() x n_outputs).
    T* target_buffer() noexcept { return targets_.data(); }

    // Gradient buffers owned by the network, in parameter shapes (train_epoch's).
    T* const* weight_gradients() noexcept { return dw_ptr_.data(); }
    T* const* bias_gradients() noexcept { return db_ptr_.data(); }

    // Batch gather buffers (the rows of the last reserve_batch).
    T* batch_x() noexcept { return batch_x_.data(); }
    T* batch_y() noexcept { return batch_y_.data(); }
    std::int64_t* batch_labels() noexcept { return batch_labels_.data(); }
    T* batch_weights() noexcept { return batch_w_.data(); }

private:
    std::vector<DenseLayer<T>> layers_;
    Loss loss_;

    index_t capacity_ = 0;            // rows the pass buffers hold
    index_t max_width_ = 0;           // widest layer input or output
    index_t max_hidden_ = 0;          // widest hidden layer output (0 for one layer)
    std::vector<Scratch<T>> z_buf_, a_buf_;  // per layer, capacity_ x n_outputs
    std::vector<T*> z_, a_;           // this pass's Z and A per layer (A == Z for identity)
    Scratch<T> grad_[2];              // ping-pong dZ / dA_prev, capacity_ x max_width_
    Scratch<T> targets_;              // smoothed targets, capacity_ x n_outputs
    index_t dropout_capacity_ = 0;    // rows the dropout buffers hold
    std::vector<Scratch<T>> mask_buf_, drop_buf_;  // per hidden layer, rows x n_outputs
    std::vector<const T*> mask_, dropped_;  // this pass's mask and A * mask per layer, or null
    std::vector<std::vector<T>> dw_, db_;  // train_epoch's gradients, parameter shapes
    std::vector<T*> dw_ptr_, db_ptr_;
    Scratch<T> batch_x_, batch_y_, batch_w_;  // gathered rows
    Scratch<std::int64_t> batch_labels_;
};

}  // namespace gd
