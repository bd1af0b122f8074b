// The SGD update loop (torch.optim.SGD, dampening 0), the one definition of it. The optimizer
// concern owns it; it is compiled twice over: by optimizers.cpp (both dtypes, the library's
// flags) and by kernels_table.hpp (float32, once per instruction set, as the kernels table's
// sgd_f32), because this memory-bound pass runs several times faster with the wide vectors.
// Its lane pass (the lane groups' update, train_lanes.cpp) is compiled the same two ways:
// float64 by train_lanes.cpp, float32 by kernels_table.hpp (lane_sgd_f32).
// Included inside an unnamed namespace by each: no include guard and no includes on purpose,
// so every copy has internal linkage (no ISA-specific copy can be picked for another ISA);
// the includer provides <type_traits> (std::true_type, a type only: no code).

// One element of the update: g' = g + wd p; with momentum buf = momentum buf + g' and
// g' = g' + momentum buf (nesterov) or buf; p -= lr g'. g is left alone. The one expression of
// the update, shared by the pass and the lane pass below, so that the compiler contracts both
// alike (the lanes must equal the pass bit for bit).
template <class T, bool decay, bool momentum, bool nesterov>
inline void sgd_element(T* __restrict p, const T* __restrict g, T* __restrict buf, index_t i,
                        T lr, T mu, T wd) noexcept {
    const T gi = decay ? g[i] + wd * p[i] : g[i];
    if constexpr (momentum) {
        const T b = mu * buf[i] + gi;
        buf[i] = b;
        p[i] -= lr * (nesterov ? gi + mu * b : b);
    } else {
        p[i] -= lr * gi;
    }
}

// One pass over p. The cases are template arguments so that each loop is branch-free and
// vectorises; p, g and buf are distinct arrays (restrict: no run-time overlap checks).
template <class T, bool decay, bool momentum, bool nesterov>
inline void sgd_pass(T* __restrict p, const T* __restrict g, T* __restrict buf,
                     index_t size, T lr, T mu, T wd) noexcept {
    for (index_t i = 0; i < size; ++i)
        sgd_element<T, decay, momentum, nesterov>(p, g, buf, i, lr, mu, wd);
}

// Calls pass(decay, momentum, nesterov) with the run-time cases as std::bool_constant values
// (template arguments for the passes; nesterov only with momentum): the one dispatch of the
// pass and of the lane pass.
template <class Pass>
inline void sgd_cases(bool decay, bool momentum, bool nesterov, Pass pass) noexcept {
    using yes = std::true_type;
    using no = std::false_type;
    if (!momentum) {
        if (decay) pass(yes{}, no{}, no{});
        else pass(no{}, no{}, no{});
    } else if (nesterov) {
        if (decay) pass(yes{}, yes{}, yes{});
        else pass(no{}, yes{}, yes{});
    } else {
        if (decay) pass(yes{}, yes{}, no{});
        else pass(no{}, yes{}, no{});
    }
}

// The pass for these hyper-parameters: buf is null without momentum.
template <class T>
inline void sgd_update(T* p, const T* g, T* buf, index_t size, T lr, T momentum, bool nesterov,
                       T weight_decay) noexcept {
    sgd_cases(weight_decay != T(0), buf != nullptr, nesterov, [&](auto decay, auto mom, auto nes) {
        sgd_pass<T, decltype(decay)::value, decltype(mom)::value, decltype(nes)::value>(
            p, g, buf, size, lr, momentum, weight_decay);
    });
}

// The pass over the lane arrays of a lane group (train_lanes.hpp: element e of lane l at
// e * L + l), each lane with its own lr, mu and wd: for every lane, the pass above.
template <class T, index_t L, bool decay, bool momentum, bool nesterov>
inline void sgd_lane_pass(T* __restrict p, const T* __restrict g, T* __restrict buf,
                          index_t elements, const T* __restrict lr, const T* __restrict mu,
                          const T* __restrict wd) noexcept {
    for (index_t e = 0; e < elements; ++e)
        for (index_t l = 0; l < L; ++l)
            sgd_element<T, decay, momentum, nesterov>(p, g, buf, e * L + l, lr[l], mu[l], wd[l]);
}

// The lane pass for these cases (every lane alike: with or without momentum, nesterov,
// weight decay): buf is null without momentum.
template <class T, index_t L>
inline void sgd_lane_update(T* p, const T* g, T* buf, index_t elements, const T* lr,
                            const T* mu, const T* wd, bool nesterov, bool decay) noexcept {
    sgd_cases(decay, buf != nullptr, nesterov, [&](auto dec, auto mom, auto nes) {
        sgd_lane_pass<T, L, decltype(dec)::value, decltype(mom)::value, decltype(nes)::value>(
            p, g, buf, elements, lr, mu, wd);
    });
}
