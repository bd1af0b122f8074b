// Dropout masks from the counter-based generator, and their product with the activations.
#include "dropout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "random.hpp"

namespace gd {

std::uint64_t keep_threshold(double rate) noexcept {
    return std::uint64_t(std::ceil(rate * 4294967296.0));  // rate in [0, 1): at most 2^32
}

template <class T>
void dropout_mask(std::uint64_t seed, std::int64_t step, std::int64_t layer, double rate,
                  index_t rows, index_t cols, T* mask) noexcept {
    const index_t size = rows * cols;
    const std::uint64_t threshold = keep_threshold(rate);
    if (threshold > 0xFFFFFFFFull) {  // rate within 2^-32 of 1: no draw reaches it
        std::fill(mask, mask + size, T(0));
        return;
    }
    const std::uint64_t key = stream_key(seed, step, layer);
    const std::uint32_t keep_from = std::uint32_t(threshold);
    const T scale = T(1.0 / (1.0 - rate));
    // The value is selected with bit masks, not a branch (which the compiler makes of a
    // conditional or of T(keep) * scale): with random data a branch mispredicts half the
    // time and costs ten times the draws. Draws in blocks on the stack (1 KiB).
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    Bits scale_bits;
    std::memcpy(&scale_bits, &scale, sizeof(T));
    constexpr index_t block = 256;
    std::uint32_t bits[block];
    for (index_t i0 = 0; i0 < size; i0 += block) {
        const index_t count = std::min(block, size - i0);
        random_bits(key, i0, count, bits);
        T* out = mask + i0;
        for (index_t c = 0; c < count; ++c) {
            const Bits value = (Bits(0) - Bits(bits[c] >= keep_from)) & scale_bits;  // or +0
            std::memcpy(out + c, &value, sizeof(T));
        }
    }
}

template <class T>
void dropout_apply(const T* a, const T* mask, index_t size, T* out) noexcept {
    for (index_t i = 0; i < size; ++i) out[i] = a[i] * mask[i];
}

template void dropout_mask<float>(std::uint64_t, std::int64_t, std::int64_t, double, index_t,
                                  index_t, float*) noexcept;
template void dropout_mask<double>(std::uint64_t, std::int64_t, std::int64_t, double, index_t,
                                   index_t, double*) noexcept;
template void dropout_apply<float>(const float*, const float*, index_t, float*) noexcept;
template void dropout_apply<double>(const double*, const double*, index_t, double*) noexcept;

}  // namespace gd
