// Update rules. Scalars are formed in double (as Python floats are) and cast to T once.
#include "optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels.hpp"

namespace gd {
namespace {

template <class T>
void add_weight_decay(T* g, const T* p, double weight_decay, index_t size) noexcept {
    if (weight_decay == 0.0) return;
    const T wd = T(weight_decay);
    for (index_t i = 0; i < size; ++i) g[i] += wd * p[i];
}

#include "sgd_pass.hpp"

// SGD: float32 by the kernels table's copy of the same pass, compiled for the CPU's widest
// vectors; float64 here.
void sgd(const OptimizerConfig& c, float* p, const float* g, float* const* slots,
         index_t size) noexcept {
    kernels::table().sgd_f32(p, g, c.momentum == 0.0 ? nullptr : slots[0], size, float(c.lr),
                             float(c.momentum), c.nesterov, float(c.weight_decay));
}

void sgd(const OptimizerConfig& c, double* p, const double* g, double* const* slots,
         index_t size) noexcept {
    sgd_update(p, g, c.momentum == 0.0 ? nullptr : slots[0], size, c.lr, c.momentum,
               c.nesterov, c.weight_decay);
}

// Adam; AdamW first decays p by (1 - lr wd) and then runs Adam without weight decay.
template <class T>
void adam(const OptimizerConfig& c, bool decoupled, std::int64_t t, T* p, T* g,
          T* const* slots, index_t size) noexcept {
    if (decoupled) {
        const T decay = T(1.0 - c.lr * c.weight_decay);
        if (decay != T(1))
            for (index_t i = 0; i < size; ++i) p[i] *= decay;
    } else {
        add_weight_decay(g, p, c.weight_decay, size);
    }
    const double bias1 = 1.0 - std::pow(c.beta1, double(t));
    const double bias2 = 1.0 - std::pow(c.beta2, double(t));
    const T step_size = T(c.lr / bias1);
    const T bias2_sqrt = T(std::sqrt(bias2));
    const T beta1 = T(c.beta1), one_minus_beta1 = T(1.0 - c.beta1);
    const T beta2 = T(c.beta2), one_minus_beta2 = T(1.0 - c.beta2);
    const T eps = T(c.eps);
    T* m = slots[0];
    T* v = slots[1];
    for (index_t i = 0; i < size; ++i) {
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i];
        v[i] = beta2 * v[i] + one_minus_beta2 * g[i] * g[i];
        p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bias2_sqrt + eps);
    }
}

template <class T>
void rmsprop(const OptimizerConfig& c, T* p, T* g, T* const* slots, index_t size) noexcept {
    add_weight_decay(g, p, c.weight_decay, size);
    const T lr = T(c.lr);
    const T alpha = T(c.alpha), one_minus_alpha = T(1.0 - c.alpha);
    const T eps = T(c.eps);
    T* square_avg = slots[0];
    if (c.momentum == 0.0) {
        for (index_t i = 0; i < size; ++i) {
            square_avg[i] = alpha * square_avg[i] + one_minus_alpha * g[i] * g[i];
            p[i] -= lr * g[i] / (std::sqrt(square_avg[i]) + eps);
        }
        return;
    }
    const T momentum = T(c.momentum);
    T* buf = slots[1];
    for (index_t i = 0; i < size; ++i) {
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * g[i] * g[i];
        buf[i] = momentum * buf[i] + g[i] / (std::sqrt(square_avg[i]) + eps);
        p[i] -= lr * buf[i];
    }
}

// Rprop, as torch.optim.Rprop: per element, the sign of g * prev scales the step size by
// eta_plus (the same sign), eta_minus (opposite: the gradient then counts as 0) or 1, clamped to
// [step_size_min, step_size_max]; p -= sign(g) * step size. Slots [prev, step_size]; the step
// sizes start at lr (torch's full_like(p, lr)), set at the first step. NaN propagates as in
// torch (a NaN product gives a NaN step size).
template <class T>
void rprop(const OptimizerConfig& c, std::int64_t t, T* p, const T* g, T* const* slots,
           index_t size) noexcept {
    T* prev = slots[0];
    T* step_size = slots[1];
    if (t == 1)
        for (index_t i = 0; i < size; ++i) step_size[i] = T(c.lr);
    const T eta_minus = T(c.eta_minus), eta_plus = T(c.eta_plus);
    const T lowest = T(c.step_size_min), highest = T(c.step_size_max);
    for (index_t i = 0; i < size; ++i) {
        const T s = g[i] * prev[i];
        const T factor = s > T(0) ? eta_plus : (s < T(0) ? eta_minus : (s == T(0) ? T(1) : s));
        const T step = std::min(std::max(step_size[i] * factor, lowest), highest);
        const T gi = s < T(0) ? T(0) : g[i];
        const T direction = gi > T(0) ? T(1) : (gi < T(0) ? T(-1) : gi);  // torch.sign
        p[i] -= direction * step;
        prev[i] = gi;
        step_size[i] = step;
    }
}

}  // namespace

OptimizerConfig OptimizerConfig::from_hyper(Optimizer optimizer, const double* hyper) noexcept {
    OptimizerConfig c;
    c.optimizer = optimizer;
    c.lr = hyper[hyper_index::lr];
    c.momentum = hyper[hyper_index::momentum];
    c.nesterov = hyper[hyper_index::nesterov] != 0.0;
    c.weight_decay = hyper[hyper_index::weight_decay];
    c.beta1 = hyper[hyper_index::beta1];
    c.beta2 = hyper[hyper_index::beta2];
    c.eps = hyper[hyper_index::eps];
    c.alpha = hyper[hyper_index::alpha];
    c.eta_minus = hyper[hyper_index::eta_minus];
    c.eta_plus = hyper[hyper_index::eta_plus];
    c.step_size_min = hyper[hyper_index::step_size_min];
    c.step_size_max = hyper[hyper_index::step_size_max];
    return c;
}

template <class T>
void optimizer_update(const OptimizerConfig& config, std::int64_t t, T* p, T* g,
                      T* const* slots, index_t size) noexcept {
    switch (config.optimizer) {
        case Optimizer::sgd: sgd(config, p, g, slots, size); break;
        case Optimizer::adam: adam(config, false, t, p, g, slots, size); break;
        case Optimizer::adamw: adam(config, true, t, p, g, slots, size); break;
        case Optimizer::rmsprop: rmsprop(config, p, g, slots, size); break;
        case Optimizer::rprop: rprop(config, t, p, g, slots, size); break;
        case Optimizer::lbfgs: break;  // a full-batch solver (lbfgs.hpp): no per-batch update
    }
}

template void optimizer_update<float>(const OptimizerConfig&, std::int64_t, float*, float*,
                                      float* const*, index_t) noexcept;
template void optimizer_update<double>(const OptimizerConfig&, std::int64_t, double*, double*,
                                       double* const*, index_t) noexcept;

}  // namespace gd
