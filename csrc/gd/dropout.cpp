// Dropout masks from the counter-based generator, and their product with the activations.
#include "dropout.hpp"

#include <algorithm>
#include <cmath>

#include "random.hpp"

namespace gd {

std::uint64_t keep_threshold(double rate) noexcept {
    return std::uint64_t(std::ceil(rate * 4294967296.0));  // rate in [0, 1): at most 2^32
}

template <class T>
void dropout_mask(std::uint64_t seed, std::int64_t step, std::int64_t layer, double rate,
                  index_t rows, index_t cols, T* mask) noexcept {
    const std::uint64_t key = stream_key(seed, step, layer);
    const std::uint64_t threshold = keep_threshold(rate);
    const T scale = T(1.0 / (1.0 - rate));
    // In blocks of draws on the stack (1 KiB), each block's loop free of branches.
    constexpr index_t block = 256;
    std::uint32_t bits[block];
    const index_t size = rows * cols;
    for (index_t i0 = 0; i0 < size; i0 += block) {
        const index_t count = std::min(block, size - i0);
        random_bits(key, i0, count, bits);
        for (index_t c = 0; c < count; ++c)
            mask[i0 + c] = std::uint64_t(bits[c]) >= threshold ? scale : T(0);
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
