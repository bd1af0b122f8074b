// The SGD update loop (torch.optim.SGD, dampening 0), the one definition of it. The optimizer
// concern owns it; it is compiled twice over: by optimizers.cpp (both dtypes, the library's
// flags) and by kernels_table.hpp (float32, once per instruction set, as the kernels table's
// sgd_f32), because this memory-bound pass runs several times faster with the wide vectors.
// Included inside an unnamed namespace by each: no include guard and no includes on purpose,
// so every copy has internal linkage (no ISA-specific copy can be picked for another ISA).

// One pass over p: g' = g + wd p; with momentum buf = momentum buf + g' and g' = g' +
// momentum buf (nesterov) or buf; p -= lr g'. g is left alone. The cases are template
// arguments so that each loop is branch-free and vectorises; p, g and buf are distinct arrays
// (restrict: no run-time overlap checks).
template <class T, bool decay, bool momentum, bool nesterov>
inline void sgd_pass(T* __restrict p, const T* __restrict g, T* __restrict buf,
                     index_t size, T lr, T mu, T wd) noexcept {
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

// The pass for these hyper-parameters: buf is null without momentum.
template <class T>
inline void sgd_update(T* p, const T* g, T* buf, index_t size, T lr, T momentum, bool nesterov,
                       T weight_decay) noexcept {
    const bool decay = weight_decay != T(0);
    if (buf == nullptr) {
        if (decay) sgd_pass<T, true, false, false>(p, g, nullptr, size, lr, momentum, weight_decay);
        else sgd_pass<T, false, false, false>(p, g, nullptr, size, lr, momentum, weight_decay);
    } else if (nesterov) {
        if (decay) sgd_pass<T, true, true, true>(p, g, buf, size, lr, momentum, weight_decay);
        else sgd_pass<T, false, true, true>(p, g, buf, size, lr, momentum, weight_decay);
    } else {
        if (decay) sgd_pass<T, true, true, false>(p, g, buf, size, lr, momentum, weight_decay);
        else sgd_pass<T, false, true, false>(p, g, buf, size, lr, momentum, weight_decay);
    }
}
