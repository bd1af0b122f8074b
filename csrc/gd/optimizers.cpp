// Update rules. Scalars are formed in double (as Python floats are) and cast to T once.
#include "optimizers.hpp"

#include <cmath>

namespace gd {
namespace {

template <class T>
void add_weight_decay(T* g, const T* p, double weight_decay, index_t size) noexcept {
    if (weight_decay == 0.0) return;
    const T wd = T(weight_decay);
    for (index_t i = 0; i < size; ++i) g[i] += wd * p[i];
}

// One SGD pass over p (torch.optim.SGD, dampening 0): g' = g + wd p; with momentum
// buf = momentum buf + g' and g' = g' + momentum buf (nesterov) or buf; p -= lr g'. g is left
// alone. The cases are template arguments so that each loop is branch-free and vectorises;
// p, g and buf are distinct arrays (restrict: no run-time overlap checks).
template <class T, bool decay, bool momentum, bool nesterov>
void sgd_pass(T* __restrict p, const T* __restrict g, T* __restrict buf, index_t size, T lr,
              T mu, T wd) noexcept {
    for (index_t i = 0; i < size; ++i) {
        const T gi = decay ? g[i] + wd * p[i] : g[i];
        if constexpr (momentum) {
            const T b = mu * buf[i] + gi;
            buf[i] = b;
            p[i] -= lr * (nesterov ? gi + mu * b : b);
        } else {
            p[i] -= lr * gi;
        }
    }
}

template <class T>
void sgd(const OptimizerConfig& c, T* p, const T* g, T* const* slots, index_t size) noexcept {
    const T lr = T(c.lr), mu = T(c.momentum), wd = T(c.weight_decay);
    const bool decay = c.weight_decay != 0.0;
    if (c.momentum == 0.0) {
        if (decay) sgd_pass<T, true, false, false>(p, g, nullptr, size, lr, mu, wd);
        else sgd_pass<T, false, false, false>(p, g, nullptr, size, lr, mu, wd);
    } else if (c.nesterov) {
        if (decay) sgd_pass<T, true, true, true>(p, g, slots[0], size, lr, mu, wd);
        else sgd_pass<T, false, true, true>(p, g, slots[0], size, lr, mu, wd);
    } else {
        if (decay) sgd_pass<T, true, true, false>(p, g, slots[0], size, lr, mu, wd);
        else sgd_pass<T, false, true, false>(p, g, slots[0], size, lr, mu, wd);
    }
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
    }
}

template void optimizer_update<float>(const OptimizerConfig&, std::int64_t, float*, float*,
                                      float* const*, index_t) noexcept;
template void optimizer_update<double>(const OptimizerConfig&, std::int64_t, double*, double*,
                                       double* const*, index_t) noexcept;

}  // namespace gd
