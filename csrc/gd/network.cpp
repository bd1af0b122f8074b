// Network: construction checks, workspace growth, forward and backward passes.
#include "network.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "activations.hpp"
#include "dense.hpp"

namespace gd {

template <class T>
Network<T>::Network(std::vector<DenseLayer<T>> layers, Loss loss)
    : layers_(std::move(layers)), loss_(loss) {
    if (layers_.empty()) throw std::invalid_argument("a network needs at least one layer");
    const std::size_t n = layers_.size();
    for (std::size_t i = 0; i < n; ++i) {
        const DenseLayer<T>& l = layers_[i];
        const std::string name = "layer " + std::to_string(i);
        if (l.weights == nullptr || l.bias == nullptr)
            throw std::invalid_argument(name + ": null parameter buffer");
        if (l.n_inputs < 1 || l.n_outputs < 1)
            throw std::invalid_argument(name + ": sizes must be at least 1");
        const int code = int(l.activation);
        if (code < 0 || code >= n_activation_codes)
            throw std::invalid_argument(name + ": unknown activation code " + std::to_string(code));
        if (i > 0 && l.n_inputs != layers_[i - 1].n_outputs)
            throw std::invalid_argument(name + ": " + std::to_string(l.n_inputs) +
                                        " inputs, but the previous layer has " +
                                        std::to_string(layers_[i - 1].n_outputs) + " outputs");
        if (l.activation == Activation::softmax && i + 1 != n)
            throw std::invalid_argument(name + ": softmax is only allowed on the output layer");
        max_width_ = std::max({max_width_, l.n_inputs, l.n_outputs});
        if (i + 1 < n) max_hidden_ = std::max(max_hidden_, l.n_outputs);
    }
    const int loss_code = int(loss);
    if (loss_code < 0 || loss_code >= n_loss_codes)
        throw std::invalid_argument("unknown loss code " + std::to_string(loss_code));
    const int out = int(layers_.back().activation);
    const int required = required_output_activation(loss);
    if (required >= 0 && out != required)
        throw std::invalid_argument("loss '" + std::string(loss_name(loss_code)) + "' needs a '" +
                                    activation_name(required) + "' output layer, got '" +
                                    activation_name(out) + "'");

    z_buf_.resize(n);
    a_buf_.resize(n);
    z_.assign(n, nullptr);
    a_.assign(n, nullptr);
    mask_buf_.resize(n);
    drop_buf_.resize(n);
    mask_.assign(n, nullptr);
    dropped_.assign(n, nullptr);
    dw_.resize(n);
    db_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        dw_[i].assign(std::size_t(layers_[i].n_inputs * layers_[i].n_outputs), T(0));
        db_[i].assign(std::size_t(layers_[i].n_outputs), T(0));
        dw_ptr_.push_back(dw_[i].data());
        db_ptr_.push_back(db_[i].data());
    }
}

template <class T>
void Network<T>::reserve(index_t rows) {
    if (rows <= capacity_) return;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const std::size_t size = std::size_t(rows * layers_[i].n_outputs);
        z_buf_[i].grow(index_t(size));
        // An identity layer's A is its Z: no buffer; a relu layer's product stores A = relu(Z)
        // only, from which its backward pass reads the mask (z > 0 exactly where a > 0).
        if (!fused(layers_[i].activation)) a_buf_[i].grow(index_t(size));
    }
    for (auto& g : grad_) g.grow(rows * max_width_);
    targets_.grow(rows * n_outputs());
    capacity_ = rows;
}

template <class T>
void Network<T>::reserve_dropout(index_t rows) {
    if (rows <= dropout_capacity_) return;
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {  // hidden layers only
        mask_buf_[i].grow(rows * layers_[i].n_outputs);
        drop_buf_[i].grow(rows * layers_[i].n_outputs);
    }
    dropout_capacity_ = rows;
}

template <class T>
double Network<T>::workspace_bytes(index_t rows) const noexcept {
    double elements = 2.0 * double(max_width_) + double(n_inputs() + 2 * n_outputs() + 1);
    for (const DenseLayer<T>& l : layers_)
        elements += double(l.n_outputs) * (fused(l.activation) ? 1.0 : 2.0);
    return double(rows) * elements * double(sizeof(T));
}

template <class T>
void Network<T>::reserve_batch(index_t rows, bool labels, bool weights) {
    batch_x_.grow(rows * n_inputs());
    if (labels) {
        batch_labels_.grow(rows);
    } else {
        batch_y_.grow(rows * n_outputs());
    }
    if (weights) batch_w_.grow(rows);
}

template <class T>
bool Network<T>::forward(const T* x, index_t n, T* out, bool output_activation,
                         StopCheck* stop, const DropoutStep* dropout) noexcept {
    const std::size_t last = layers_.size() - 1;
    const T* a_prev = x;
    for (std::size_t i = 0; i <= last; ++i) {
        const DenseLayer<T>& l = layers_[i];
        const bool in_place = fused(l.activation);  // A is Z (identity) or relu(Z) in Z's place
        T* z = z_buf_[i].data();
        T* a = in_place ? z : a_buf_[i].data();
        if (i == last && out != nullptr) {
            if (in_place) z = out;  // computed in place
            a = out;
        }
        const bool relu = l.activation == Activation::relu;
        if (!dense_forward(a_prev, l.weights, l.bias, n, l.n_inputs, l.n_outputs, z, relu, stop))
            return false;
        if (i == last && !output_activation && loss_ == Loss::cross_entropy &&
            l.activation == Activation::softmax) {
            a = nullptr;  // the fused cross_entropy gradient computes the softmax itself
        } else if (!in_place) {
            activation_forward(l.activation, z, a, n, l.n_outputs);
        }
        z_[i] = z;
        a_[i] = a;
        a_prev = a;
        mask_[i] = dropped_[i] = nullptr;
        const double rate = dropout != nullptr && dropout->rates != nullptr && i < last
                                ? dropout->rates[i] : 0.0;
        if (rate > 0.0) {  // the next layer sees A * mask; A stays for f'(Z)
            T* mask = mask_buf_[i].data();
            T* dropped = drop_buf_[i].data();
            dropout_mask(dropout->seed, dropout->step, index_t(i), rate, n, l.n_outputs, mask);
            dropout_apply(a, mask, n * l.n_outputs, dropped);
            mask_[i] = mask;
            dropped_[i] = dropped;
            a_prev = dropped;
        }
    }
    return true;
}

template <class T>
bool Network<T>::predict(const T* x, index_t n, T* out, T* scratch,
                         StopCheck* stop) const noexcept {
    // Hidden layers ping-pong between the two halves of scratch, A = f(Z) in place.
    const std::size_t last = layers_.size() - 1;
    const T* a_prev = x;
    T* half[2] = {scratch, scratch + n * max_hidden_};
    for (std::size_t i = 0; i <= last; ++i) {
        const DenseLayer<T>& l = layers_[i];
        T* z = i == last ? out : half[i % 2];
        const bool relu = l.activation == Activation::relu;
        if (!dense_forward(a_prev, l.weights, l.bias, n, l.n_inputs, l.n_outputs, z, relu, stop))
            return false;
        if (!fused(l.activation)) activation_forward(l.activation, z, z, n, l.n_outputs);
        a_prev = z;
    }
    return true;
}

template <class T>
bool Network<T>::backward(const T* x, index_t n, T* const* dw, T* const* db,
                          StopCheck* stop) noexcept {
    T* dz = grad_[0].data();     // dL/dZ of layer i
    T* other = grad_[1].data();  // receives dL/dA of layer i - 1
    for (std::size_t i = layers_.size(); i-- > 0;) {
        const DenseLayer<T>& l = layers_[i];
        const T* mask_prev = i > 0 ? mask_[i - 1] : nullptr;  // dropout on layer i - 1
        const T* a_prev = i == 0 ? x : (mask_prev ? dropped_[i - 1] : a_[i - 1]);
        T* da_prev = i > 0 ? other : nullptr;
        const bool relu_prev =
            i > 0 && layers_[i - 1].activation == Activation::relu && mask_prev == nullptr;
        if (!dense_backward(a_prev, dz, l.weights, n, l.n_inputs, l.n_outputs, dw[i], db[i],
                            da_prev, relu_prev, stop))
            return false;
        if (i > 0) {
            const DenseLayer<T>& prev = layers_[i - 1];
            // Through the dropout: dL/dA = dL/d(A * mask) * mask, in place.
            if (mask_prev) dropout_apply(da_prev, mask_prev, n * prev.n_outputs, da_prev);
            // dZ_prev = dA_prev * f'(Z_prev), in place (for relu, done by the product)
            if (!relu_prev)
                activation_backward(prev.activation, z_[i - 1], a_[i - 1], da_prev, da_prev, n,
                                    prev.n_outputs);
            std::swap(dz, other);
        }
    }
    return true;
}

template class Network<float>;
template class Network<double>;

}  // namespace gd
