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
    static constexpr int lanes = GD_VECTOR_BYTES / int(sizeof(T));
};

template <class V, class T>
GD_INLINE V vload(const T* p) noexcept {
    V v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

template <class V, class T>
GD_INLINE void vstore(T* p, V v) noexcept {
    __builtin_memcpy(p, &v, sizeof v);
}

}  // namespace
}  // namespace gd::kernels::GD_ISA_NS
