// The integer codes shared with the NumPy reference engine (docs/design.md), and the index type.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gd {

// Row/column counts and element offsets.
using index_t = std::ptrdiff_t;

// Activation of a layer, A = f(Z).
enum class Activation : int {
    identity = 0, sigmoid = 1, tanh = 2, relu = 3, leaky_relu = 4,
    elu = 5, softplus = 6, gelu = 7, softmax = 8,
};
constexpr int n_activation_codes = 9;

// Loss of the output layer; bce needs a sigmoid output, cross_entropy a softmax one.
enum class Loss : int { mse = 0, mae = 1, huber = 2, bce = 3, cross_entropy = 4 };
constexpr int n_loss_codes = 5;

// Update rule of train_epoch.
enum class OptimizerKind : int { sgd = 0, adam = 1, adamw = 2, rmsprop = 3 };
constexpr int n_optimizer_codes = 4;

// Display names, for error messages (the string names of the Python API).
inline const char* activation_name(int code) noexcept {
    constexpr const char* names[n_activation_codes] = {
        "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "softmax"};
    return code >= 0 && code < n_activation_codes ? names[code] : "?";
}
inline const char* loss_name(int code) noexcept {
    constexpr const char* names[n_loss_codes] = {"mse", "mae", "huber", "bce", "cross_entropy"};
    return code >= 0 && code < n_loss_codes ? names[code] : "?";
}
inline const char* optimizer_name(int code) noexcept {
    constexpr const char* names[n_optimizer_codes] = {"sgd", "adam", "adamw", "rmsprop"};
    return code >= 0 && code < n_optimizer_codes ? names[code] : "?";
}

}  // namespace gd
