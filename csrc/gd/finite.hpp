// Finiteness tests that vectorise: integer tests on the exponent bits (a float reduction
// would not vectorise without -ffast-math, and std::isfinite with an early exit does not).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "codes.hpp"

namespace gd {

// Whether every value of p[0:n] is finite (neither inf nor NaN).
template <class T>
bool all_finite(const T* p, index_t n) {
    static_assert(std::is_floating_point_v<T>, "all_finite takes float or double");
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr int top = 8 * sizeof(T) - 1;
    constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
    constexpr Bits exponent_lsb = exponent & ~(exponent << 1);  // lowest exponent bit
    // A value is inf or NaN exactly when its exponent field is all ones; adding one to the
    // field then carries into the sign bit. Only AND, ADD and OR: vectorises on plain SSE2.
    Bits carries = 0;
    for (index_t i = 0; i < n; ++i) {
        Bits bits;
        std::memcpy(&bits, p + i, sizeof(T));
        carries |= (bits & exponent) + exponent_lsb;
    }
    return (carries >> top) == 0;
}

}  // namespace gd
