// The float32 elementwise math: exp, tanh, sigmoid and log1p(exp(-|x|)), polynomial and
// rational approximations in plain loops the compiler vectorises, and tanh's backward. Part of
// kernels_table.hpp.
#pragma once

#ifndef GD_INLINE
#error "kernels_math.hpp is included by kernels_table.hpp only"
#endif

namespace gd::kernels::GD_ISA_NS {
namespace {

GD_INLINE float bits_to_float(int i) noexcept {
    float f;
    __builtin_memcpy(&f, &i, sizeof f);
    return f;
}

// exp(x): x = n ln2 + r, |r| <= ln2 / 2, exp(r) by the Cephes expf polynomial, times 2^n.
GD_INLINE float exp_f32(float x) noexcept {
    const float hi = 88.3762626647949f, lo = -87.3365447504019f;  // 2^n stays a normal float
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    xc = xc == xc ? xc : 0.0f;  // NaN: computed as exp(0), replaced below (int(NaN) is UB)
    const float t = xc * 1.44269504088896341f;
    const float fn = (t + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23 trick
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    const float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float er = p * r2 + r + 1.0f;
    const int n = int(fn);  // in [-126, 128]: the biased exponent n + 127 is non-negative
    float y = er * bits_to_float(int(unsigned(n + 127) << 23));
    y = x > hi ? __builtin_inff() : y;
    y = x < lo ? 0.0f : y;
    return x == x ? y : x;  // NaN in, NaN out
}

// tanh(x): the odd/even rational approximation of Eigen's fast tanh on [-7.99, 7.99] (beyond,
// tanh rounds to +-1); x itself for |x| < 4e-4.
GD_INLINE float tanh_f32(float x) noexcept {
    const float c = 7.90531110763549805f;
    float xc = x > c ? c : x;
    xc = xc < -c ? -c : xc;
    const float x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    const float ax = x < 0.0f ? -x : x;
    return ax < 0.0004f ? x : p / q;
}

GD_INLINE float sigmoid_f32(float z) noexcept {
    const float e = exp_f32(z < 0.0f ? z : -z);  // exp(-|z|) in (0, 1]
    const float s = 1.0f / (1.0f + e);
    return z >= 0.0f ? s : e * s;
}

void exp_map(const float* x, float* y, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) y[i] = exp_f32(x[i]);
}
void tanh_map(const float* x, float* y, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) y[i] = tanh_f32(x[i]);
}
void sigmoid_map(const float* x, float* y, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) y[i] = sigmoid_f32(x[i]);
}

// log1p(exp(-|z|)), the term of the bce loss (losses.cpp): u = 1 + e in (1, 2], log(u) by the
// Cephes logf polynomial on [sqrt(1/2), sqrt(2)), corrected by the rounding of u
// (log1p(e) = log(u) - (u - 1 - e) / u).
GD_INLINE float softplus_neg_abs_f32(float z) noexcept {
    const float e = exp_f32(z < 0.0f ? z : -z);
    const float u = 1.0f + e;
    const bool high = u > 1.41421356237f;
    const float x = (high ? 0.5f * u : u) - 1.0f;
    const float fe = high ? 1.0f : 0.0f;
    const float x2 = x * x;
    float y = 7.0376836292e-2f;
    y = y * x - 1.1514610310e-1f;
    y = y * x + 1.1676998740e-1f;
    y = y * x - 1.2420140846e-1f;
    y = y * x + 1.4249322787e-1f;
    y = y * x - 1.6668057665e-1f;
    y = y * x + 2.0000714765e-1f;
    y = y * x - 2.4999993993e-1f;
    y = y * x + 3.3333331174e-1f;
    y = y * x * x2;
    y += -2.12194440e-4f * fe;
    y += -0.5f * x2;
    float log_u = x + y;
    log_u += 0.693359375f * fe;
    return log_u - ((u - 1.0f) - e) / u;
}

void softplus_neg_abs_map(const float* x, float* y, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) y[i] = softplus_neg_abs_f32(x[i]);
}

// tanh's backward: one pass the compiler vectorises (the library's own copy in activations.cpp
// is compiled for the baseline instruction set).
void tanh_backward_map(const float* a, const float* da, float* dz, index_t size) noexcept {
    for (index_t i = 0; i < size; ++i) dz[i] = da[i] * (1.0f - a[i] * a[i]);
}

}  // namespace
}  // namespace gd::kernels::GD_ISA_NS
