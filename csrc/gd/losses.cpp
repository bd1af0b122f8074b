// Loss kernels. Per-sample loss l_j is a mean over the outputs (a sum over classes for
// cross_entropy); the batch loss weighs samples by w_j.
#include "losses.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "activations.hpp"
#include "kernels.hpp"

namespace gd {
namespace {

template <class T>
inline T sign(T d) noexcept {  // np.sign: 0 at 0, NaN stays NaN
    return d > T(0) ? T(1) : (d < T(0) ? T(-1) : d);
}

template <class T>
inline double weight_sum(const T* w, index_t n) noexcept {
    if (w == nullptr) return double(n);
    double s = 0.0;
    for (index_t j = 0; j < n; ++j) s += double(w[j]);
    return s;
}

// Per-element loss and dL/da (before the 1/k and weight scaling) of the elementwise losses.
struct Mse {
    template <class T> static T l(T d) noexcept { return d * d; }
    template <class T> static T g(T d) noexcept { return T(2) * d; }
};
struct Mae {
    template <class T> static T l(T d) noexcept { return std::abs(d); }
    template <class T> static T g(T d) noexcept { return sign(d); }
};
struct SquaredError {  // scikit-learn's squared loss: half the squared error
    template <class T> static T l(T d) noexcept { return T(0.5) * d * d; }
    template <class T> static T g(T d) noexcept { return d; }
};
struct Huber {  // delta 1
    template <class T> static T l(T d) noexcept {
        return std::abs(d) < T(1) ? T(0.5) * d * d : std::abs(d) - T(0.5);
    }
    template <class T> static T g(T d) noexcept { return std::abs(d) <= T(1) ? d : sign(d); }
};

// The bce loss of the logit z and target y, max(z, 0) - z y + log1p(exp(-|z|)), given its last
// term (std::log1p(std::exp(-|z|)), or the float32 kernel's in bce_sum(float)).
template <class T>
inline T bce_from_logit(T z, T y, T log1p_exp_neg_abs_z) noexcept {
    return (std::max(z, T(0)) - z * y) + log1p_exp_neg_abs_z;
}

// sum_j w_j * mean_k l(a_jk - y_jk) over the rows, in double.
template <class F, class T>
double elementwise_sum(const T* a, const T* y, const T* w, index_t n, index_t k) noexcept {
    double total = 0.0;
    for (index_t j = 0; j < n; ++j) {
        const T* aj = a + j * k;
        const T* yj = y + j * k;
        double row = 0.0;
        for (index_t c = 0; c < k; ++c) row += double(F::l(aj[c] - yj[c]));
        row /= double(k);
        total += w ? double(w[j]) * row : row;
    }
    return total;
}

template <class T>
double bce_sum(const T* z, const T* y, const T* w, index_t n, index_t k) noexcept {
    double total = 0.0;
    for (index_t j = 0; j < n; ++j) {
        const T* zj = z + j * k;
        const T* yj = y + j * k;
        double row = 0.0;
        for (index_t c = 0; c < k; ++c)
            row += double(bce_from_logit(zj[c], yj[c], std::log1p(std::exp(-std::abs(zj[c])))));
        row /= double(k);
        total += w ? double(w[j]) * row : row;
    }
    return total;
}

// float32: log1p(exp(-|z|)) by the vectorised kernel, a block of at most 64 values at a time
// (whole rows when they fit, else column chunks of one row): 256 bytes of stack.
double bce_sum(const float* z, const float* y, const float* w, index_t n, index_t k) noexcept {
    constexpr index_t block = 64;
    float terms[block];  // log1p(exp(-|z|)) of the block
    const kernels::MapFn softplus_neg_abs = kernels::table().softplus_neg_abs_f32;
    double total = 0.0;
    if (k > block) {
        for (index_t j = 0; j < n; ++j) {
            double row = 0.0;
            for (index_t c0 = 0; c0 < k; c0 += block) {
                const index_t cols = std::min(block, k - c0);
                const float* zb = z + j * k + c0;
                const float* yb = y + j * k + c0;
                softplus_neg_abs(zb, terms, cols);
                for (index_t c = 0; c < cols; ++c)
                    row += double(bce_from_logit(zb[c], yb[c], terms[c]));
            }
            row /= double(k);
            total += w ? double(w[j]) * row : row;
        }
        return total;
    }
    if (k == 1 && w == nullptr) {  // one value a row: the rows' loop without its bookkeeping
        for (index_t j0 = 0; j0 < n; j0 += block) {
            const index_t rows = std::min(block, n - j0);
            softplus_neg_abs(z + j0, terms, rows);
            for (index_t j = 0; j < rows; ++j)
                total += double(bce_from_logit(z[j0 + j], y[j0 + j], terms[j]));
        }
        return total;
    }
    const index_t rows_per_block = block / k;
    for (index_t j0 = 0; j0 < n; j0 += rows_per_block) {
        const index_t rows = std::min(rows_per_block, n - j0);
        const float* zb = z + j0 * k;
        const float* yb = y + j0 * k;
        softplus_neg_abs(zb, terms, rows * k);
        for (index_t j = 0; j < rows; ++j) {
            double row = 0.0;
            for (index_t c = j * k; c < (j + 1) * k; ++c)
                row += double(bce_from_logit(zb[c], yb[c], terms[c]));
            if (k != 1) row /= double(k);  // (x / 1 is x: one division less per row)
            total += w ? double(w[j0 + j]) * row : row;
        }
    }
    return total;
}

// sum_j w_j * (-sum_k y_jk log_softmax(z_j)_k), log_softmax = z - max - log(sum exp(z - max)).
// scratch (n x k) or null: where exp(z - max) is computed in one vectorised pass.
template <class T>
double cross_entropy_sum(const T* z, Targets<T> y, const T* w, index_t n, index_t k,
                         T* scratch) noexcept {
    row_shifted_exp(z, n, k, scratch);
    double total = 0.0;
    for (index_t j = 0; j < n; ++j) {
        const T* zj = z + j * k;
        T zmax = zj[0];
        for (index_t c = 1; c < k; ++c) zmax = std::max(zmax, zj[c]);
        T sum = T(0);
        if (scratch != nullptr) {
            const T* ej = scratch + j * k;
            for (index_t c = 0; c < k; ++c) sum += ej[c];
        } else {
            for (index_t c = 0; c < k; ++c) sum += std::exp(zj[c] - zmax);
        }
        const T shift = zmax + std::log(sum);
        double row;
        if (y.labels) {
            row = double(shift - zj[y.labels[j]]);
        } else {
            const T* yj = y.values + j * k;
            row = 0.0;
            for (index_t c = 0; c < k; ++c) row -= double(yj[c] * (zj[c] - shift));
        }
        total += w ? double(w[j]) * row : row;
    }
    return total;
}

// scratch (n x k) or null: room for intermediate values (loss_gradient passes dz).
template <class T>
double loss_sum(Loss loss, const T* z, const T* a, Targets<T> y, const T* w, index_t n,
                index_t k, T* scratch = nullptr) noexcept {
    switch (loss) {
        case Loss::mse: return elementwise_sum<Mse>(a, y.values, w, n, k);
        case Loss::mae: return elementwise_sum<Mae>(a, y.values, w, n, k);
        case Loss::huber: return elementwise_sum<Huber>(a, y.values, w, n, k);
        case Loss::bce: return bce_sum(z, y.values, w, n, k);
        case Loss::cross_entropy: return cross_entropy_sum(z, y, w, n, k, scratch);
        case Loss::squared_error: return elementwise_sum<SquaredError>(a, y.values, w, n, k);
    }
    return 0.0;
}

// dz = g(a - y) * w_j / (sum_w * k): dL/dA of the elementwise losses.
template <class F, class T>
void elementwise_grad(const T* a, const T* y, const T* w, index_t n, index_t k, double sum_w,
                      T* dz) noexcept {
    const double denom = sum_w * double(k);
    const T scale_1 = T(1.0 / denom);
    for (index_t j = 0; j < n; ++j) {
        const T scale = w ? T(double(w[j]) / denom) : scale_1;
        const T* aj = a + j * k;
        const T* yj = y + j * k;
        T* dzj = dz + j * k;
        for (index_t c = 0; c < k; ++c) dzj[c] = F::g(aj[c] - yj[c]) * scale;
    }
}

// dz = (a - y) * w_j / denom: the fused gradients of bce (denom = sum_w k) and cross_entropy
// (denom = sum_w), a = sigmoid(z) or softmax(z).
template <class T>
void fused_grad(const T* a, Targets<T> y, const T* w, index_t n, index_t k, double denom,
                T* dz) noexcept {
    const T scale_1 = T(1.0 / denom);
    if (w == nullptr && y.values != nullptr) {  // one scale for all: one flat, vectorised loop
        for (index_t i = 0; i < n * k; ++i) dz[i] = (a[i] - y.values[i]) * scale_1;
        return;
    }
    for (index_t j = 0; j < n; ++j) {
        const T scale = w ? T(double(w[j]) / denom) : scale_1;
        const T* aj = a + j * k;
        T* dzj = dz + j * k;
        if (y.labels) {
            const std::int64_t label = y.labels[j];
            for (index_t c = 0; c < k; ++c) dzj[c] = (aj[c] - T(c == label ? 1 : 0)) * scale;
        } else {
            const T* yj = y.values + j * k;
            for (index_t c = 0; c < k; ++c) dzj[c] = (aj[c] - yj[c]) * scale;
        }
    }
}

// cross_entropy in one pass over the exponentials: dz = (softmax(z) - y) * w_j / sum_w and
// returns sum_j w_j l_j. exp(z - max) lands in dz (float32 by the vectorised kernel), each row's
// sum gives both the loss (from log-sum-exp) and softmax = e / sum: the same values, formula
// for formula, as softmax_forward followed by cross_entropy_sum and fused_grad.
template <class T>
double cross_entropy_fused(const T* z, Targets<T> y, const T* w, index_t n, index_t k,
                           double sum_w, T* dz) noexcept {
    row_shifted_exp(z, n, k, dz);
    const T scale_1 = T(1.0 / sum_w);
    double total = 0.0;
    for (index_t j = 0; j < n; ++j) {
        const T* zj = z + j * k;
        T* ej = dz + j * k;
        T zmax = zj[0];
        for (index_t c = 1; c < k; ++c) zmax = std::max(zmax, zj[c]);
        T sum = T(0);
        for (index_t c = 0; c < k; ++c) sum += ej[c];
        const T scale = w ? T(double(w[j]) / sum_w) : scale_1;
        const T shift = zmax + std::log(sum);
        double row;
        if (y.labels) {
            const std::int64_t label = y.labels[j];
            row = double(shift - zj[label]);
            for (index_t c = 0; c < k; ++c)
                ej[c] = (ej[c] / sum - T(c == label ? 1 : 0)) * scale;
        } else {
            const T* yj = y.values + j * k;
            row = 0.0;
            for (index_t c = 0; c < k; ++c) row -= double(yj[c] * (zj[c] - shift));
            for (index_t c = 0; c < k; ++c) ej[c] = (ej[c] / sum - yj[c]) * scale;
        }
        total += w ? double(w[j]) * row : row;
    }
    return total;
}

}  // namespace

template <class T>
T loss_value(Loss loss, const T* z, const T* a, Targets<T> y, const T* w, index_t n,
             index_t k) noexcept {
    return T(loss_sum(loss, z, a, y, w, n, k) / weight_sum(w, n));
}

template <class T>
T loss_gradient(Loss loss, Activation out, const T* z, const T* a, Targets<T> y, const T* w,
                index_t n, index_t k, T* dz) noexcept {
    const double sum_w = weight_sum(w, n);
    if (loss == Loss::cross_entropy)  // reads z only: `a` may be null (forward without softmax)
        return T(cross_entropy_fused(z, y, w, n, k, sum_w, dz) / sum_w);
    const T value = T(loss_sum(loss, z, a, y, w, n, k, dz) / sum_w);
    switch (loss) {
        case Loss::mse: elementwise_grad<Mse>(a, y.values, w, n, k, sum_w, dz); break;
        case Loss::mae: elementwise_grad<Mae>(a, y.values, w, n, k, sum_w, dz); break;
        case Loss::huber: elementwise_grad<Huber>(a, y.values, w, n, k, sum_w, dz); break;
        case Loss::bce: fused_grad(a, y, w, n, k, sum_w * double(k), dz); return value;
        case Loss::cross_entropy: fused_grad(a, y, w, n, k, sum_w, dz); return value;
        case Loss::squared_error:
            elementwise_grad<SquaredError>(a, y.values, w, n, k, sum_w, dz);
            break;
    }
    // dL/dZ = dL/dA * f'(Z), in place.
    activation_backward(out, z, a, dz, dz, n, k);
    return value;
}

template <class T>
Targets<T> smooth_targets(Loss loss, Targets<T> y, index_t n, index_t k, double label_smoothing,
                          T* out) noexcept {
    const double classes = loss == Loss::bce ? 2.0 : double(k);
    const T keep = T(1.0 - label_smoothing);
    const T spread = T(label_smoothing / classes);
    for (index_t j = 0; j < n; ++j) {
        T* oj = out + j * k;
        if (y.labels) {
            const std::int64_t label = y.labels[j];
            for (index_t c = 0; c < k; ++c) oj[c] = T(c == label ? 1 : 0) * keep + spread;
        } else {
            const T* yj = y.values + j * k;
            for (index_t c = 0; c < k; ++c) oj[c] = yj[c] * keep + spread;
        }
    }
    Targets<T> smoothed;
    smoothed.values = out;
    return smoothed;
}

template float loss_value<float>(Loss, const float*, const float*, Targets<float>,
                                 const float*, index_t, index_t) noexcept;
template double loss_value<double>(Loss, const double*, const double*, Targets<double>,
                                   const double*, index_t, index_t) noexcept;
template <class T>
void bce_gradient_lanes(const T* z, const T* a, const T* y, const T* w, index_t n, index_t k,
                        index_t lanes, T* terms, T* dz, T* values) noexcept {
    // log1p(exp(-|z|)) of every element, as bce_sum computes it (elementwise: the layout does
    // not matter), then per network bce_sum's sums: rows in order, each row's k terms in
    // order from 0.0, divided by k, weighted. (bce_sum(float)'s shortcuts, no row sum when
    // k == 1 and no division by 1, give the same doubles.)
    const index_t size = n * k * lanes;
    if constexpr (std::is_same_v<T, float>) {
        kernels::table().softplus_neg_abs_f32(z, terms, size);
    } else {
        for (index_t e = 0; e < size; ++e) terms[e] = std::log1p(std::exp(-std::abs(z[e])));
    }
    constexpr index_t most = kernels::lane_count<float>;  // (the widest group)
    double total[most] = {}, row[most];
    for (index_t j = 0; j < n; ++j) {
        for (index_t l = 0; l < lanes; ++l) row[l] = 0.0;
        for (index_t c = 0; c < k; ++c) {
            const index_t e = (j * k + c) * lanes;
            const T yc = y[j * k + c];
            for (index_t l = 0; l < lanes; ++l)
                row[l] += double(bce_from_logit(z[e + l], yc, terms[e + l]));
        }
        const double wj = w ? double(w[j]) : 1.0;
        for (index_t l = 0; l < lanes; ++l) {
            row[l] /= double(k);
            total[l] += w ? wj * row[l] : row[l];
        }
    }
    const double sum_w = weight_sum(w, n);
    for (index_t l = 0; l < lanes; ++l) values[l] = T(total[l] / sum_w);
    // fused_grad's dz = (a - y) w_j / (sum_w k), element by element.
    const double denom = sum_w * double(k);
    const T scale_1 = T(1.0 / denom);
    for (index_t j = 0; j < n; ++j) {
        const T scale = w ? T(double(w[j]) / denom) : scale_1;
        for (index_t c = 0; c < k; ++c) {
            const index_t e = (j * k + c) * lanes;
            const T yc = y[j * k + c];
            for (index_t l = 0; l < lanes; ++l) dz[e + l] = (a[e + l] - yc) * scale;
        }
    }
}

template void bce_gradient_lanes<float>(const float*, const float*, const float*, const float*,
                                        index_t, index_t, index_t, float*, float*,
                                        float*) noexcept;
template void bce_gradient_lanes<double>(const double*, const double*, const double*,
                                         const double*, index_t, index_t, index_t, double*,
                                         double*, double*) noexcept;

template float loss_gradient<float>(Loss, Activation, const float*, const float*,
                                    Targets<float>, const float*, index_t, index_t,
                                    float*) noexcept;
template double loss_gradient<double>(Loss, Activation, const double*, const double*,
                                      Targets<double>, const double*, index_t, index_t,
                                      double*) noexcept;
template Targets<float> smooth_targets<float>(Loss, Targets<float>, index_t, index_t, double,
                                              float*) noexcept;
template Targets<double> smooth_targets<double>(Loss, Targets<double>, index_t, index_t, double,
                                                double*) noexcept;

}  // namespace gd
