// Inverted dropout on a hidden layer's output activations, with masks drawn from the
// counter-based generator of random.hpp: the mask of (seed, step, layer) is the same in both
// engines and in any order of computation.
#pragma once

#include <cstdint>

#include "codes.hpp"

namespace gd {

// The dropout of one training step: a rate per layer (n_layers values in [0, 1), the last one
// unused; null: no dropout), the seed of the masks and the optimizer step they belong to.
struct DropoutStep {
    const double* rates = nullptr;
    std::uint64_t seed = 0;
    std::int64_t step = 0;
};

// The 32-bit draws at or above which an element is kept: ceil(rate 2^32) (exact: rate 2^32 is
// a power-of-two scaling). P(keep) = 1 - threshold / 2^32, which is 1 - rate up to 2^-32.
std::uint64_t keep_threshold(double rate) noexcept;

// mask (rows x cols, row-major) of layer `layer` at optimizer step `step`: element i (= row *
// cols + col) is 1 / (1 - rate) (computed in double, rounded to T) where draw i of
// stream_key(seed, step, layer) is at least keep_threshold(rate), else 0.
template <class T>
void dropout_mask(std::uint64_t seed, std::int64_t step, std::int64_t layer, double rate,
                  index_t rows, index_t cols, T* mask) noexcept;

// out[i] = a[i] * mask[i] for i < size; out may equal a (in place).
template <class T>
void dropout_apply(const T* a, const T* mask, index_t size, T* out) noexcept;

}  // namespace gd
