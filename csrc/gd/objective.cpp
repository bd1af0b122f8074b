// The objective: data loss with label smoothing, plus the l2 penalty, and its gradient.
#include "objective.hpp"

namespace gd {
namespace {

// The targets the loss sees: y, or smoothed into the network's target buffer.
template <class T>
Targets<T> loss_targets(Network<T>& net, Targets<T> y, index_t n, double label_smoothing) {
    const Loss loss = net.loss();
    if (label_smoothing == 0.0 || (loss != Loss::cross_entropy && loss != Loss::bce)) return y;
    return smooth_targets(loss, y, n, net.n_outputs(), label_smoothing, net.target_buffer());
}

// The objective from the data loss: T(double(loss) + penalty); the loss itself without l2.
template <class T>
T with_penalty(const Network<T>& net, T loss, double l2, double sum_w) noexcept {
    if (l2 == 0.0) return loss;
    return T(double(loss) + l2_penalty(net, l2, sum_w));
}

}  // namespace

template <class T>
double sample_weight_sum(const T* w, index_t n) noexcept {
    if (w == nullptr) return double(n);
    double s = 0.0;
    for (index_t j = 0; j < n; ++j) s += double(w[j]);
    return s;
}

template <class T>
double l2_penalty(const Network<T>& net, double l2, double sum_w) noexcept {
    if (l2 == 0.0) return 0.0;
    // Four partial sums: one chain of dependent additions would take four times as long
    // (the order of the sum is not part of the contract; NumPy's differs anyway).
    double partial[4] = {0.0, 0.0, 0.0, 0.0};
    for (index_t i = 0; i < net.n_layers(); ++i) {
        const DenseLayer<T>& l = net.layer(i);
        const T* w = l.weights;
        const index_t size = l.n_inputs * l.n_outputs;
        index_t e = 0;
        for (; e + 4 <= size; e += 4)
            for (int q = 0; q < 4; ++q) partial[q] += double(w[e + q]) * double(w[e + q]);
        for (; e < size; ++e) partial[0] += double(w[e]) * double(w[e]);
    }
    const double squares = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    return 0.5 * l2 * squares / sum_w;
}

template <class T>
void l2_gradient(const Network<T>& net, double l2, double sum_w, T* const* dw) noexcept {
    if (l2 == 0.0) return;
    const T c = T(l2 / sum_w);
    for (index_t i = 0; i < net.n_layers(); ++i) {
        const DenseLayer<T>& l = net.layer(i);
        const index_t size = l.n_inputs * l.n_outputs;
        T* g = dw[i];
        for (index_t e = 0; e < size; ++e) g[e] += c * l.weights[e];
    }
}

template <class T>
bool objective_value(Network<T>& net, const T* x, index_t n, Targets<T> y, const T* w,
                     const Regularisers& reg, std::int64_t step, T* value,
                     StopCheck* stop) noexcept {
    const DropoutStep dropout{reg.dropout, reg.dropout_seed, step};
    if (!net.forward(x, n, nullptr, true, stop, reg.dropout ? &dropout : nullptr)) return false;
    const Targets<T> targets = loss_targets(net, y, n, reg.label_smoothing);
    const T loss = loss_value(net.loss(), net.output_logits(), net.output_activations(), targets,
                              w, n, net.n_outputs());
    *value = with_penalty(net, loss, reg.l2, sample_weight_sum(w, n));
    return true;
}

template <class T>
bool objective_gradient(Network<T>& net, const T* x, index_t n, Targets<T> y, const T* w,
                        const Regularisers& reg, std::int64_t step, T* const* dw, T* const* db,
                        T* value, StopCheck* stop) noexcept {
    const DropoutStep dropout{reg.dropout, reg.dropout_seed, step};
    if (!net.forward(x, n, nullptr, false, stop, reg.dropout ? &dropout : nullptr)) return false;
    const double sum_w = sample_weight_sum(w, n);
    *value = output_objective(net, net.output_logits(), net.output_activations(), n, y, w, reg,
                              sum_w, net.output_gradient());
    if (!net.backward(x, n, dw, db, stop)) return false;
    l2_gradient(net, reg.l2, sum_w, dw);
    return true;
}

template <class T>
T output_objective(Network<T>& net, const T* z, const T* a, index_t n, Targets<T> y,
                   const T* w, const Regularisers& reg, double sum_w, T* dz) noexcept {
    const Targets<T> targets = loss_targets(net, y, n, reg.label_smoothing);
    const T loss = loss_gradient(net.loss(), net.layer(net.n_layers() - 1).activation, z, a,
                                 targets, w, n, net.n_outputs(), dz);
    return with_penalty(net, loss, reg.l2, sum_w);
}

#define GD_INSTANTIATE(T)                                                                      \
    template double sample_weight_sum<T>(const T*, index_t) noexcept;                          \
    template T output_objective<T>(Network<T>&, const T*, const T*, index_t, Targets<T>,       \
                                   const T*, const Regularisers&, double, T*) noexcept;        \
    template double l2_penalty<T>(const Network<T>&, double, double) noexcept;                 \
    template void l2_gradient<T>(const Network<T>&, double, double, T* const*) noexcept;       \
    template bool objective_value<T>(Network<T>&, const T*, index_t, Targets<T>, const T*,     \
                                     const Regularisers&, std::int64_t, T*, StopCheck*)        \
        noexcept;                                                                              \
    template bool objective_gradient<T>(Network<T>&, const T*, index_t, Targets<T>, const T*,  \
                                        const Regularisers&, std::int64_t, T* const*,          \
                                        T* const*, T*, StopCheck*) noexcept;
GD_INSTANTIATE(float)
GD_INSTANTIATE(double)
#undef GD_INSTANTIATE

}  // namespace gd
