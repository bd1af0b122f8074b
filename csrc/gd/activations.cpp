// Activation kernels: one functor per activation, one flat loop per call.
#include "activations.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels.hpp"

namespace gd {
namespace {

// Each functor: f(z), and dz = backward(z, a, da) = da * f'(z) given a = f(z). The order of
// operations follows the NumPy reference (reference/activations.py), so results agree to the
// last bits where the libm calls do.
struct Identity {
    template <class T> static T f(T z) noexcept { return z; }
    template <class T> static T backward(T, T, T da) noexcept { return da; }
};
struct Sigmoid {
    template <class T> static T f(T z) noexcept { return sigmoid(z); }
    template <class T> static T backward(T, T a, T da) noexcept { return da * (a * (T(1) - a)); }
};
struct Tanh {
    template <class T> static T f(T z) noexcept { return std::tanh(z); }
    template <class T> static T backward(T, T a, T da) noexcept { return da * (T(1) - a * a); }
};
struct Relu {  // NaN passes through, as np.maximum(z, 0) does
    template <class T> static T f(T z) noexcept { return z < T(0) ? T(0) : z; }
    template <class T> static T backward(T z, T, T da) noexcept { return z > T(0) ? da : T(0); }
};
struct LeakyRelu {  // slope 0.01
    template <class T> static T f(T z) noexcept { return z > T(0) ? z : T(0.01) * z; }
    template <class T> static T backward(T z, T, T da) noexcept {
        return z > T(0) ? da : T(0.01) * da;
    }
};
struct Elu {  // alpha 1; for z <= 0, f'(z) = exp(z) = a + 1
    template <class T> static T f(T z) noexcept { return z > T(0) ? z : std::expm1(z); }
    template <class T> static T backward(T z, T a, T da) noexcept {
        return z > T(0) ? da : da * (a + T(1));
    }
};
struct Softplus {  // threshold 20, as torch.nn.Softplus()
    template <class T> static T f(T z) noexcept { return z > T(20) ? z : std::log1p(std::exp(z)); }
    template <class T> static T backward(T z, T, T da) noexcept {
        return z > T(20) ? da : da * sigmoid(z);
    }
};
struct Gelu {  // tanh approximation: 0.5 z (1 + tanh(c (z + k z^3))), c = sqrt(2/pi), k = 0.044715
    template <class T> static constexpr T c() noexcept { return T(0.7978845608028654); }
    template <class T> static constexpr T k() noexcept { return T(0.044715); }
    template <class T> static T f(T z) noexcept {
        return T(0.5) * z * (T(1) + std::tanh(c<T>() * (z + k<T>() * (z * z * z))));
    }
    // f' = 0.5 (1 + t) + 0.5 z (1 - t^2) c (1 + 3 k z^2), t = tanh(c (z + k z^3))
    template <class T> static T backward(T z, T, T da) noexcept {
        const T z2 = z * z;
        const T t = std::tanh(c<T>() * (z + k<T>() * (z2 * z)));
        const T left = T(0.5) * (T(1) + t);
        const T right = (T(0.5) * z) * (T(1) - t * t) * (c<T>() * (T(1) + T(3 * 0.044715) * z2));
        return da * (left + right);
    }
};

template <class F, class T>
void map_forward(const T* z, T* a, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) a[i] = F::f(z[i]);
}

// float32: tanh and sigmoid by the vectorised kernels (a few ulp; float32 parity is 1e-4).
// float64 keeps the exact library functions (parity 1e-9).
template <>
void map_forward<Tanh, float>(const float* z, float* a, index_t size) noexcept {
    kernels::table().tanh_f32(z, a, size);
}
template <>
void map_forward<Sigmoid, float>(const float* z, float* a, index_t size) noexcept {
    kernels::table().sigmoid_f32(z, a, size);
}

template <class F, class T>
void map_backward(const T* z, const T* a, const T* da, T* dz, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) dz[i] = F::backward(z[i], a[i], da[i]);
}

// float32 tanh: the kernels' pass at the CPU's vector width.
template <>
void map_backward<Tanh, float>(const float*, const float* a, const float* da, float* dz,
                               index_t size) noexcept {
    kernels::table().tanh_backward_f32(a, da, dz, size);
}

// softmax row-wise: exp(z - max) of the whole block (float32 by one vectorised exp), then each
// row divided by its sum. a may equal z.
template <class T>
void softmax_forward(const T* z, T* a, index_t rows, index_t cols) noexcept {
    row_shifted_exp(z, rows, cols, a);
    for (index_t r = 0; r < rows; ++r) {
        T* ar = a + r * cols;
        T sum = T(0);
        for (index_t j = 0; j < cols; ++j) sum += ar[j];
        for (index_t j = 0; j < cols; ++j) ar[j] /= sum;
    }
}

template <class T>
void softmax_backward(const T* a, const T* da, T* dz, index_t rows, index_t cols) noexcept {
    for (index_t r = 0; r < rows; ++r) {
        const T* ar = a + r * cols;
        const T* dar = da + r * cols;
        T* dzr = dz + r * cols;
        T dot = T(0);
        for (index_t j = 0; j < cols; ++j) dot += dar[j] * ar[j];
        for (index_t j = 0; j < cols; ++j) dzr[j] = ar[j] * (dar[j] - dot);
    }
}

}  // namespace

template <class T>
void activation_forward(Activation act, const T* z, T* a, index_t rows, index_t cols) noexcept {
    const index_t size = rows * cols;
    switch (act) {
        case Activation::identity:
            if (a != z) std::copy(z, z + size, a);
            break;
        case Activation::sigmoid: map_forward<Sigmoid>(z, a, size); break;
        case Activation::tanh: map_forward<Tanh>(z, a, size); break;
        case Activation::relu: map_forward<Relu>(z, a, size); break;
        case Activation::leaky_relu: map_forward<LeakyRelu>(z, a, size); break;
        case Activation::elu: map_forward<Elu>(z, a, size); break;
        case Activation::softplus: map_forward<Softplus>(z, a, size); break;
        case Activation::gelu: map_forward<Gelu>(z, a, size); break;
        case Activation::softmax: softmax_forward(z, a, rows, cols); break;
    }
}

template <class T>
void activation_backward(Activation act, const T* z, const T* a, const T* da, T* dz,
                         index_t rows, index_t cols) noexcept {
    const index_t size = rows * cols;
    switch (act) {
        case Activation::identity:
            if (dz != da) std::copy(da, da + size, dz);
            break;
        case Activation::sigmoid: map_backward<Sigmoid>(z, a, da, dz, size); break;
        case Activation::tanh: map_backward<Tanh>(z, a, da, dz, size); break;
        case Activation::relu: map_backward<Relu>(z, a, da, dz, size); break;
        case Activation::leaky_relu: map_backward<LeakyRelu>(z, a, da, dz, size); break;
        case Activation::elu: map_backward<Elu>(z, a, da, dz, size); break;
        case Activation::softplus: map_backward<Softplus>(z, a, da, dz, size); break;
        case Activation::gelu: map_backward<Gelu>(z, a, da, dz, size); break;
        case Activation::softmax: softmax_backward(a, da, dz, rows, cols); break;
    }
}

template void activation_forward<float>(Activation, const float*, float*, index_t,
                                        index_t) noexcept;
template void activation_forward<double>(Activation, const double*, double*, index_t,
                                         index_t) noexcept;
template void activation_backward<float>(Activation, const float*, const float*, const float*,
                                         float*, index_t, index_t) noexcept;
template void activation_backward<double>(Activation, const double*, const double*,
                                          const double*, double*, index_t, index_t) noexcept;

template <class T>
void row_shifted_exp(const T* z, index_t rows, index_t cols, T* e) noexcept {
    if (e == nullptr) return;
    for (index_t r = 0; r < rows; ++r) {
        const T* zr = z + r * cols;
        T* er = e + r * cols;
        T zmax = zr[0];
        for (index_t j = 1; j < cols; ++j) zmax = std::max(zmax, zr[j]);
        for (index_t j = 0; j < cols; ++j) er[j] = zr[j] - zmax;
    }
    if constexpr (std::is_same_v<T, float>) {
        kernels::table().exp_f32(e, e, rows * cols);
    } else {
        for (index_t i = 0; i < rows * cols; ++i) e[i] = std::exp(e[i]);
    }
}

template void row_shifted_exp<float>(const float*, index_t, index_t, float*) noexcept;
template void row_shifted_exp<double>(const double*, index_t, index_t, double*) noexcept;

}  // namespace gd
