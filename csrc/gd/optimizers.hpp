// In-place update rules of torch.optim (dampening 0, not centered, not amsgrad).
#pragma once

#include <cstdint>

#include "codes.hpp"

namespace gd {

// An optimizer and its hyper-parameters, from the engine's float64 hyper-parameter vector
// (its layout: codes.def, GD_HYPER; nesterov is 0 or 1).
struct OptimizerConfig {
    Optimizer optimizer = Optimizer::sgd;
    double lr = 0.01;
    double momentum = 0.0;
    bool nesterov = false;
    double weight_decay = 0.0;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double alpha = 0.99;
    double eta_minus = 0.5;
    double eta_plus = 1.2;
    double step_size_min = 1e-6;
    double step_size_max = 50.0;

    static OptimizerConfig from_hyper(Optimizer optimizer, const double* hyper) noexcept;

    // State arrays per parameter (codes.def, GD_OPTIMIZER): SGD [momentum_buffer] if
    // momentum > 0; Adam/AdamW [exp_avg, exp_avg_sq]; RMSprop [square_avg] (+ [momentum_buffer]
    // if momentum > 0); Rprop [prev, step_size].
    int n_slots() const noexcept { return state_slots(optimizer, momentum > 0.0); }
};

// One step on a parameter p (size elements) with gradient g, which Adam and RMSprop use as
// scratch (their weight-decay term is added into it; SGD leaves g alone). slots: n_slots()
// arrays of size elements. t is the 1-based number of this step (Adam's bias correction).
template <class T>
void optimizer_update(const OptimizerConfig& config, std::int64_t t, T* p, T* g,
                      T* const* slots, index_t size) noexcept;

}  // namespace gd
