// The vector type of the kernels and its loads and stores: GCC/Clang vector extensions at the
// width GD_VECTOR_BYTES of the instruction set being compiled. Part of kernels_table.hpp.
#pragma once

#ifndef GD_INLINE
#error "kernels_vectors.hpp is included by kernels_table.hpp only"
#endif

namespace gd::kernels::GD_ISA_NS {
namespace {

template <class T>
struct Vec {
    typedef T type __attribute__((vector_size(GD_VECTOR_BYTES)));
    // The same vector at the element's alignment (any element offset), aliasing anything.
    typedef T unaligned
        __attribute__((vector_size(GD_VECTOR_BYTES), aligned(alignof(T)), may_alias));
    static constexpr int lanes = GD_VECTOR_BYTES / int(sizeof(T));
};

// Loads and stores through the unaligned type, not memcpy into a local: GCC kept memcpy'd
// vectors in stack slots (a store and a reload per vector in the GEMM's inner loop; with
// 32-byte vectors on SSE2, element by element), ~2x slower on AVX2 and ~10x on x86-64.
template <class V, class T>
GD_INLINE V vload(const T* p) noexcept {
    return *reinterpret_cast<const typename Vec<T>::unaligned*>(p);
}

template <class V, class T>
GD_INLINE void vstore(T* p, V v) noexcept {
    *reinterpret_cast<typename Vec<T>::unaligned*>(p) = v;
}

}  // namespace
}  // namespace gd::kernels::GD_ISA_NS
