// Counter-based random numbers: a stateless hash of (seed, step, layer, element), so the same
// numbers come out in any order, in C++ and in NumPy's uint64 arithmetic (twin:
// gdcore/reference/random.py), bit for bit.
//
// The hash is splitmix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014; the generator of java.util.SplittableRandom, which passes
// BigCrush): its state advances by the odd constant golden_gamma and each output is mix64 of
// the state. A stream's state starts at stream_key(seed, step, layer), each coordinate absorbed
// by one mix64; the j-th output of the stream is then mix64(key + (j + 1) golden_gamma), a
// pure function of j, computed by any element without the ones before it. Each 64-bit output
// gives two 32-bit draws (element i takes the low half of output i / 2 when i is even, the
// high half when odd): half the multiplications, and 32 bits are plenty for a keep/drop
// decision.
#pragma once

#include <cstdint>

#include "codes.hpp"

namespace gd {

// splitmix64's increment: 2^64 / golden ratio, odd.
constexpr std::uint64_t golden_gamma = 0x9E3779B97F4A7C15ull;

// splitmix64's output function (the variant "mix13" of Stafford's MurmurHash3 finaliser).
inline std::uint64_t mix64(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The starting state of the stream of (seed, step, layer): seed, then step, then layer, each
// added to the state and mixed (unsigned arithmetic, modulo 2^64).
inline std::uint64_t stream_key(std::uint64_t seed, std::int64_t step,
                                std::int64_t layer) noexcept {
    std::uint64_t key = mix64(seed + golden_gamma);
    key = mix64(key + std::uint64_t(step) + golden_gamma);
    return mix64(key + std::uint64_t(layer) + golden_gamma);
}

// Draws i0, i0 + 1, ..., i0 + size - 1 of the stream `key`, each a uniform 32-bit integer
// (as uint32 values in out[0..size)): draw i is the low (i even) or high (i odd) half of
// mix64(key + (i / 2 + 1) golden_gamma). Integer operations with no dependence between
// iterations (vectorisable).
inline void random_bits(std::uint64_t key, index_t i0, index_t size,
                        std::uint32_t* out) noexcept {
    for (index_t c = 0; c < size; ++c) {
        const std::uint64_t i = std::uint64_t(i0 + c);
        const std::uint64_t word = mix64(key + ((i >> 1) + 1) * golden_gamma);
        out[c] = std::uint32_t(word >> (32 * (i & 1)));
    }
}

}  // namespace gd
