// The full-batch objective: forward pass, loss and dL/dZ, backward pass.
#include "objective.hpp"

#include <limits>

namespace gd {

template <class T>
double objective_gradient(Network<T>& net, const T* x, index_t n, Targets<T> y,
                          const T* sample_weight, T* const* dw, T* const* db,
                          StopCheck* stop) noexcept {
    constexpr double stopped = std::numeric_limits<double>::quiet_NaN();
    if (!net.forward(x, n, nullptr, false, stop)) return stopped;
    const Activation out = net.layer(net.n_layers() - 1).activation;
    const T value = loss_gradient(net.loss(), out, net.output_logits(), net.output_activations(),
                                  y, sample_weight, n, net.n_outputs(), net.output_gradient());
    if (!net.backward(x, n, dw, db, stop)) return stopped;
    return double(value);
}

template double objective_gradient<float>(Network<float>&, const float*, index_t, Targets<float>,
                                          const float*, float* const*, float* const*,
                                          StopCheck*) noexcept;
template double objective_gradient<double>(Network<double>&, const double*, index_t,
                                           Targets<double>, const double*, double* const*,
                                           double* const*, StopCheck*) noexcept;

}  // namespace gd
