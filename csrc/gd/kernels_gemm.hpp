// The linear-algebra kernels: the register-blocked GEMM with its epilogue (bias, relu, relu's
// backward mask), its one-column case (dot products along the rows of A) and column sums (the
// bias gradient), for float and double. Part of kernels_table.hpp.
#pragma once

#include "kernels_vectors.hpp"

namespace gd::kernels::GD_ISA_NS {
namespace {

// What the store of C does, known at compile time for the common cases: the kernels below are
// instantiated per combination (epilogue_flags picks one per call), so a tile's store runs no
// test per vector; ep_runtime tests everything per element (the rare combinations). The
// operations and their order are the same either way.
enum : int {
    ep_scale = 1,     // alpha != 1
    ep_beta = 2,      // beta != 0: + beta * C
    ep_bias = 4,      // + bias[j]
    ep_relu = 8,      // max(., 0)
    ep_mask = 16,     // 0 where mask <= 0
    ep_runtime = 32,  // all of the above tested at run time
};

template <class T>
GD_INLINE int epilogue_flags(T alpha, T beta, const Epilogue<T>& ep) noexcept {
    return (alpha != T(1) ? ep_scale : 0) | (beta != T(0) ? ep_beta : 0) |
           (ep.bias != nullptr ? ep_bias : 0) | (ep.relu ? ep_relu : 0) |
           (ep.mask != nullptr ? ep_mask : 0);
}

// The epilogue of the block of C starting at row i, column j.
template <class T>
GD_INLINE Epilogue<T> shifted(const Epilogue<T>& ep, index_t i, index_t j) noexcept {
    return {ep.bias ? ep.bias + j : nullptr, ep.relu, ep.mask ? ep.mask + i * ep.ldm + j : nullptr,
            ep.ldm};
}

// The epilogue of one element C[i, j] (i, j relative to the epilogue's origin).
template <class T, int F = ep_runtime>
GD_INLINE T finish(T out, const Epilogue<T>& ep, index_t i, index_t j) noexcept {
    constexpr bool any = F & ep_runtime;
    if (any ? ep.bias != nullptr : bool(F & ep_bias)) out += ep.bias[j];
    if (any ? ep.relu : bool(F & ep_relu)) out = out < T(0) ? T(0) : out;
    if (any ? ep.mask != nullptr : bool(F & ep_mask))
        out = ep.mask[i * ep.ldm + j] > T(0) ? out : T(0);
    return out;
}

// alpha * x + beta * c, as the stores compute it (alpha == 1 and beta == 0 skipped).
template <class T, int F, class V>
GD_INLINE V scaled(V x, T alpha, T beta, const T* c) noexcept {
    constexpr bool any = F & ep_runtime;
    V out = (any ? alpha != T(1) : bool(F & ep_scale)) ? alpha * x : x;
    if (any ? beta != T(0) : bool(F & ep_beta)) {
        if constexpr (sizeof(V) == sizeof(T)) out += beta * *c;  // (one element)
        else out += beta * vload<V>(c);
    }
    return out;
}

// A tile of MR rows x NV vectors of C, its accumulators kept in registers over the depth.
template <class T, int MR, int NV>
struct Tile {
    static_assert(NV >= 1 && NV <= 4, "1 to 4 vectors of columns");
    using V = typename Vec<T>::type;
    static constexpr int L = Vec<T>::lanes;
    V acc[MR][NV];

    GD_INLINE Tile() noexcept {
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < NV; ++v) acc[r][v] = V{};
    }

    // acc += sum_{p0 <= p < p1} a(r, p) * b[p, 0:NV*L], with a(r, p) = a[r * ars + p * acs]
    // (ars/acs select op(A)) and b row-major with row stride ldb.
    GD_INLINE void add(index_t p0, index_t p1, const T* a, index_t ars, index_t acs, const T* b,
                       index_t ldb) noexcept {
        for (index_t p = p0; p < p1; ++p) {
            const T* bp = b + p * ldb;
            const T* ap = a + p * acs;
            // (Named vectors, not an array: GCC kept an array of B's vectors in stack slots.)
            const V b0 = vload<V>(bp);
            const V b1 = NV > 1 ? vload<V>(bp + L) : V{};
            const V b2 = NV > 2 ? vload<V>(bp + 2 * L) : V{};
            const V b3 = NV > 3 ? vload<V>(bp + 3 * L) : V{};
            for (int r = 0; r < MR; ++r) {
                const T ar = ap[r * ars];
                acc[r][0] += ar * b0;
                if constexpr (NV > 1) acc[r][1] += ar * b1;
                if constexpr (NV > 2) acc[r][2] += ar * b2;
                if constexpr (NV > 3) acc[r][3] += ar * b3;
            }
        }
    }

    // C = alpha * acc, + beta * C, then the epilogue: NumPy's order for A @ W + b.
    template <int F>
    GD_INLINE void store(T* c, index_t ldc, T alpha, T beta, const Epilogue<T>& ep) const noexcept {
        constexpr bool any = F & ep_runtime;
        for (int r = 0; r < MR; ++r) {
            for (int v = 0; v < NV; ++v) {
                T* cp = c + r * ldc + v * L;
                V out = scaled<T, F>(acc[r][v], alpha, beta, cp);
                if (any ? ep.bias != nullptr : bool(F & ep_bias))
                    out += vload<V>(ep.bias + v * L);
                if (any ? ep.relu : bool(F & ep_relu)) out = out < V{} ? V{} : out;
                if (any ? ep.mask != nullptr : bool(F & ep_mask))
                    out = vload<V>(ep.mask + r * ep.ldm + v * L) > V{} ? out : V{};
                vstore(cp, out);
            }
        }
    }

    // The same for the first w < L columns only (NV == 1).
    template <int F>
    GD_INLINE void store_part(index_t w, T* c, index_t ldc, T alpha, T beta,
                              const Epilogue<T>& ep) const noexcept {
        constexpr bool any = F & ep_runtime;
        alignas(64) T lanes[L];
        for (int r = 0; r < MR; ++r) {
            vstore(lanes, (any ? alpha != T(1) : bool(F & ep_scale)) ? alpha * acc[r][0]
                                                                     : acc[r][0]);
            T* cr = c + r * ldc;
            for (index_t q = 0; q < w; ++q) {
                T out = lanes[q];
                if (any ? beta != T(0) : bool(F & ep_beta)) out += beta * cr[q];
                cr[q] = finish<T, F>(out, ep, r, q);
            }
        }
    }
};

// One MR x NV-vector tile of C over the whole depth, stored with its epilogue.
template <class T, int F, int MR, int NV>
GD_INLINE void tile(index_t k, const T* a, index_t ars, index_t acs, const T* b, index_t ldb,
                    T* c, index_t ldc, T alpha, T beta, const Epilogue<T>& ep) noexcept {
    Tile<T, MR, NV> t;
    t.add(0, k, a, ars, acs, b, ldb);
    t.template store<F>(c, ldc, alpha, beta, ep);
}

// The last rows of a panel (rows < R + 1): one tile of exactly that many rows.
template <class T, int F, int R, int NV>
GD_INLINE void last_rows(index_t rows, index_t k, const T* a, index_t ars, index_t acs,
                         const T* b, index_t ldb, T* c, index_t ldc, T alpha, T beta,
                         const Epilogue<T>& ep) noexcept {
    if constexpr (R >= 1) {
        if (rows == R) return tile<T, F, R, NV>(k, a, ars, acs, b, ldb, c, ldc, alpha, beta, ep);
        last_rows<T, F, R - 1, NV>(rows, k, a, ars, acs, b, ldb, c, ldc, alpha, beta, ep);
    }
}

// Full-width panel b[:, 0:NV*L] over all rows: MR-row tiles, then one tile of the last rows.
// Not inlined: in the one large gemm_direct, GCC kept other paths' loop invariants in vector
// registers and spilled B's vectors to the stack inside the tile's loop (a store and two
// reloads per depth step, ~2x slower on AVX2); on its own the tile's accumulators, B's vectors
// and the broadcast fit the registers. (A call per tile instead cost the tiny network's
// products, a few short tiles each, up to 2x: 32x16x2 took 268 ns against 140.)
template <class T, int F, int MR, int NV>
__attribute__((noinline)) void panel(index_t m, index_t k, const T* a, index_t ars, index_t acs,
                                     const T* b, index_t ldb, T* c, index_t ldc, T alpha, T beta,
                                     const Epilogue<T>& ep) noexcept {
    index_t i = 0;
    for (; i + MR <= m; i += MR)
        tile<T, F, MR, NV>(k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, alpha, beta,
                           shifted(ep, i, 0));
    if (i < m)
        last_rows<T, F, MR - 1, NV>(m - i, k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc,
                                    alpha, beta, shifted(ep, i, 0));
}

// The register tiles of this instruction set (kernels_<isa>.cpp): panels of gemm_tile_vectors
// vectors of columns in tiles of gemm_tile_rows rows; the last whole vectors of C's width in
// narrower panels of taller tiles, as many accumulators (up to 8 rows: each row's broadcast is a
// load, and a tile must keep loads below its multiply-adds).
inline constexpr int gemm_tile_rows = GD_GEMM_TILE_ROWS;
inline constexpr int gemm_tile_vectors = GD_GEMM_TILE_VECTORS;
constexpr int tile_rows_for(int vectors) noexcept {
    const int rows = gemm_tile_rows * gemm_tile_vectors / vectors;
    return vectors == gemm_tile_vectors ? gemm_tile_rows : rows < 8 ? rows : 8;
}

// The panels of whole vectors b[:, 0:n] (n a multiple of the lanes): NV-vector panels, then
// the last vectors (fewer than NV) in one narrower panel.
template <class T, int F, int NV>
GD_INLINE index_t vector_panels(index_t m, index_t n, index_t k, const T* a, index_t ars,
                                index_t acs, const T* b, index_t ldb, T* c, index_t ldc, T alpha,
                                T beta, const Epilogue<T>& ep) noexcept {
    constexpr int L = Vec<T>::lanes;
    index_t j = 0;
    for (; j + NV * L <= n; j += NV * L)
        panel<T, F, tile_rows_for(NV), NV>(m, k, a, ars, acs, b + j, ldb, c + j, ldc, alpha,
                                           beta, shifted(ep, 0, j));
    if constexpr (NV > 1)
        j += vector_panels<T, F, NV - 1>(m, n - j, k, a, ars, acs, b + j, ldb, c + j, ldc, alpha,
                                         beta, shifted(ep, 0, j));
    return j;
}

// The rows of B that tail_panel reads in place for its last w < L columns: row p's vector ends
// at p * ldb + L, and b's last used element is (k - 1) * ldb + w - 1.
template <class T>
GD_INLINE index_t tail_safe_depth(index_t k, index_t w, index_t ldb) noexcept {
    constexpr int L = Vec<T>::lanes;
    const index_t k_safe = ldb > 0 ? k - 1 - (L - w + ldb - 1) / ldb : 0;
    return k_safe < 0 ? 0 : k_safe;
}

// The last w < L columns b[:, 0:w]. A full vector load of row p reads past column w into the
// next row, which is harmless (those lanes are dropped) while it stays inside b: rows
// [0, k_safe) are read in place, the last few from a zero-padded copy.
template <class T, int F, int MR>
GD_INLINE void tail_panel(index_t m, index_t n_cols, index_t k, const T* a, index_t ars,
                          index_t acs, const T* b, index_t ldb, T* c, index_t ldc, T alpha,
                          T beta, const Epilogue<T>& ep, T* last) noexcept {
    constexpr int L = Vec<T>::lanes;
    static_assert((L + 1) * L <= gemm_work_elements - gemm_work_tail, "work's tail region");
    const index_t w = n_cols;
    const index_t k_safe = tail_safe_depth<T>(k, w, ldb);
    // last: rows [k_safe, k), at most 1 + ceil((L - w) / ldb) <= L, of L elements each.
    const index_t n_last = k - k_safe;
    for (index_t p = 0; p < n_last; ++p) {
        for (index_t q = 0; q < w; ++q) last[p * L + q] = b[(k_safe + p) * ldb + q];
        for (index_t q = w; q < L; ++q) last[p * L + q] = T(0);
    }
    const index_t acs_last = acs;
    if (m == 1) {  // one row: 4 independent sums over interleaved p, not one long chain
        using V = typename Vec<T>::type;
        V acc[4] = {V{}, V{}, V{}, V{}};
        index_t p = 0;
        for (; p + 4 <= k_safe; p += 4)
            for (int q = 0; q < 4; ++q) acc[q] += a[(p + q) * acs] * vload<V>(b + (p + q) * ldb);
        for (; p < k_safe; ++p) acc[0] += a[p * acs] * vload<V>(b + p * ldb);
        for (index_t r = 0; r < n_last; ++r)
            acc[1] += a[(k_safe + r) * acs] * vload<V>(last + r * L);
        Tile<T, 1, 1> t;
        t.acc[0][0] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        t.template store_part<F>(w, c, ldc, alpha, beta, ep);
        return;
    }
    index_t i = 0;
    for (; i + MR <= m; i += MR) {
        Tile<T, MR, 1> t;
        t.add(0, k_safe, a + i * ars, ars, acs, b, ldb);
        t.add(0, n_last, a + i * ars + k_safe * acs, ars, acs_last, last, L);
        t.template store_part<F>(w, c + i * ldc, ldc, alpha, beta, shifted(ep, i, 0));
    }
    for (; i < m; ++i) {
        Tile<T, 1, 1> t;
        t.add(0, k_safe, a + i * ars, ars, acs, b, ldb);
        t.add(0, n_last, a + i * ars + k_safe * acs, ars, acs_last, last, L);
        t.template store_part<F>(w, c + i * ldc, ldc, alpha, beta, shifted(ep, i, 0));
    }
}

// gemm_direct's panels for the epilogue F (op(B) as stored, k > 0): the ISA's register tiles
// (vector_panels), then the last columns. A single row (a prediction) takes panels of 4
// vectors: 4 independent sums, not 2.
template <class T, int F>
void direct_panels(index_t m, index_t n, index_t k, T alpha, const T* a, index_t ars,
                   index_t acs, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                   const Epilogue<T>& ep, T* work) noexcept {
    constexpr int L = Vec<T>::lanes;
    index_t j = 0;
    if (m == 1)
        for (; j + 4 * L <= n; j += 4 * L)
            panel<T, F, 1, 4>(m, k, a, ars, acs, b + j, ldb, c + j, ldc, alpha, beta,
                              shifted(ep, 0, j));
    j += vector_panels<T, F, gemm_tile_vectors>(m, (n - j) / L * L, k, a, ars, acs, b + j, ldb,
                                                c + j, ldc, alpha, beta, shifted(ep, 0, j));
    if (j < n)
        tail_panel<T, F, 8>(m, n - j, k, a, ars, acs, b + j, ldb, c + j, ldc, alpha, beta,
                            shifted(ep, 0, j), work + gemm_work_tail);
}

// The epilogues training uses get their own instantiation; the rest test at run time.
#define GD_DISPATCH_EPILOGUE(flags, fn, ...)                                           \
    switch (flags) {                                                                  \
        case 0: fn<T, 0>(__VA_ARGS__); break;                                         \
        case ep_bias: fn<T, ep_bias>(__VA_ARGS__); break;                             \
        case ep_bias | ep_relu: fn<T, ep_bias | ep_relu>(__VA_ARGS__); break;         \
        case ep_mask: fn<T, ep_mask>(__VA_ARGS__); break;                             \
        case ep_beta: fn<T, ep_beta>(__VA_ARGS__); break;                             \
        default: fn<T, ep_runtime>(__VA_ARGS__); break;                               \
    }

template <class T>
void gemm_direct(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                 const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                 const Epilogue<T>& ep, T* work) noexcept {
    // op(B) transposed: pack it as k x n (row stride n) first.
    T* const packed = work;
    if (trans_b) {
        for (index_t p = 0; p < k; ++p)
            for (index_t j = 0; j < n; ++j) packed[p * n + j] = b[j * ldb + p];
        b = packed;
        ldb = n;
    }
    const index_t ars = trans_a ? 1 : lda;  // a(i, p) = a[i * ars + p * acs]
    const index_t acs = trans_a ? lda : 1;
    if (k == 0) {  // C = beta C, then the epilogue: no product
        for (index_t i = 0; i < m; ++i)
            for (index_t j = 0; j < n; ++j)
                c[i * ldc + j] = finish(beta == T(0) ? T(0) : beta * c[i * ldc + j], ep, i, j);
        return;
    }
    GD_DISPATCH_EPILOGUE(epilogue_flags(alpha, beta, ep), direct_panels, m, n, k, alpha, a, ars,
                         acs, b, ldb, beta, c, ldc, ep, work)
}

// The sum of a vector's lanes, pairwise in registers: lanes q and q + w/2 of the first w, for
// w = L, L/2, ..., 2 (log2(L) dependent adds; the order is fixed, so sums are reproducible).
template <class T, int W, class V>
GD_INLINE T fold(V v) noexcept {
    if constexpr (W == 1) {
        return v[0];
    } else {
        typedef T Half __attribute__((vector_size(sizeof(T) * W / 2)));
        Half lo, hi;
        __builtin_memcpy(&lo, &v, sizeof lo);
        __builtin_memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
        return fold<T, W / 2>(lo + hi);
    }
}

template <class T>
GD_INLINE T hsum(typename Vec<T>::type v) noexcept {
    return fold<T, Vec<T>::lanes>(v);
}

// a * b + c for the scalar sums below: one fused multiply-add where the instruction set has one
// (as the vector code's contracted a * b + c), else rounded twice. Written out because GCC
// vectorises an in-order scalar sum in pieces that multiply first and add after: each product
// then rounded on its own, depending on the loop's length. The lane products
// (kernels_lanes.hpp) repeat these sums, so their rounding must not be the compiler's choice.
template <class T>
GD_INLINE T madd(T a, T b, T c) noexcept {
#if defined(__FP_FAST_FMA) && defined(__FP_FAST_FMAF)
    if constexpr (sizeof(T) == sizeof(float)) return __builtin_fmaf(a, b, c);
    else return __builtin_fma(a, b, c);
#else
    return c + a * b;
#endif
}

// One output column (A @ w, w a column of stride ldb): dot products along the rows of A, 4 rows
// at a time, then the horizontal sums.
template <class T, int F>
void dot_rows(index_t m, index_t k, T alpha, const T* a, index_t lda, const T* w, T beta, T* c,
              index_t ldc, const Epilogue<T>& ep) noexcept {
    using V = typename Vec<T>::type;
    constexpr int L = Vec<T>::lanes;
    const index_t kv = k - k % L;
    const auto emit = [&](index_t i, T dot) {
        c[i * ldc] = finish<T, F>(scaled<T, F>(dot, alpha, beta, c + i * ldc), ep, i, 0);
    };
    index_t i = 0;
    for (; i + 4 <= m; i += 4) {
        V acc[4] = {V{}, V{}, V{}, V{}};
        for (index_t p = 0; p < kv; p += L) {
            const V wv = vload<V>(w + p);
            for (int r = 0; r < 4; ++r) acc[r] += vload<V>(a + (i + r) * lda + p) * wv;
        }
        for (int r = 0; r < 4; ++r) {
            T dot = hsum<T>(acc[r]);
            for (index_t p = kv; p < k; ++p) dot = madd(a[(i + r) * lda + p], w[p], dot);
            emit(i + r, dot);
        }
    }
    for (; i < m; ++i) {
        V acc = V{};
        for (index_t p = 0; p < kv; p += L) acc += vload<V>(a + i * lda + p) * vload<V>(w + p);
        T dot = hsum<T>(acc);
        for (index_t p = kv; p < k; ++p) dot = madd(a[i * lda + p], w[p], dot);
        emit(i, dot);
    }
}

template <class T>
void gemv_dot(index_t m, index_t k, T alpha, const T* a, index_t lda, const T* b, index_t ldb,
              T beta, T* c, index_t ldc, const Epilogue<T>& ep, T* work) noexcept {
    T* const column = work;  // w made contiguous
    const T* w = b;
    if (ldb != 1) {
        if (k > max_packed)
            return gemm_direct<T>(false, false, m, 1, k, alpha, a, lda, b, ldb, beta, c, ldc, ep,
                                  work);
        for (index_t p = 0; p < k; ++p) column[p] = b[p * ldb];
        w = column;
    }
    GD_DISPATCH_EPILOGUE(epilogue_flags(alpha, beta, ep), dot_rows, m, k, alpha, a, lda, w, beta,
                         c, ldc, ep)
}

#undef GD_DISPATCH_EPILOGUE

// Narrow C (n < L columns, more rows than columns) wastes vector lanes; its transpose does not:
// C^T (n x m) = op(B)^T @ op(A)^T into a scratch block, then copied into C with beta and the
// epilogue. Only for A stored transposed: op(A)^T is then A as stored (packing A otherwise
// costs more than the lanes save, measured).
// gemm's two special cases (kernels_lanes.hpp's lane_plan takes the same branches): the one-
// column product, and narrow C computed transposed.
template <class T>
GD_INLINE bool one_column(bool trans_a, bool trans_b, index_t n, index_t k) noexcept {
    return !trans_a && !trans_b && n == 1 && k >= Vec<T>::lanes;
}
template <class T>
GD_INLINE bool narrow_c(bool trans_a, index_t m, index_t n, index_t k) noexcept {
    return trans_a && n < Vec<T>::lanes && m >= 2 * n && k > 0 && m * n <= max_packed;
}

template <class T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
          index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
          Epilogue<T> ep, T* work) noexcept {
    if (one_column<T>(trans_a, trans_b, n, k)) {
        gemv_dot(m, k, alpha, a, lda, b, ldb, beta, c, ldc, ep, work);
        return;
    }
    if (!narrow_c<T>(trans_a, m, n, k)) {
        gemm_direct(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep, work);
        return;
    }
    // op(B)^T is B read transposed (B stored k x n) or as stored (n x k); op(A)^T likewise.
    // (The inner product reads B as stored: it packs nothing, so work's first region is free.)
    T* const scratch = work + max_packed;
    gemm_direct<T>(!trans_b, !trans_a, n, m, k, alpha, b, ldb, a, lda, T(0), scratch, m, {},
                   work);
    if (beta == T(0) && ep.bias == nullptr && !ep.relu && ep.mask == nullptr) {
        // Plain transpose (a weight gradient): no per-element epilogue tests.
        for (index_t i = 0; i < m; ++i) {
            T* ci = c + i * ldc;
            for (index_t j = 0; j < n; ++j) ci[j] = scratch[j * m + i];
        }
        return;
    }
    for (index_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        for (index_t j = 0; j < n; ++j) {
            T out = scratch[j * m + i];
            if (beta != T(0)) out += beta * ci[j];
            ci[j] = finish(out, ep, i, j);
        }
    }
}

// s[j] = sum_r x[r, j], rows added in order (NumPy's x.sum(axis=0) on a C array): whole
// vectors of columns summed in registers down the rows, then the last columns one by one.
template <class T>
void column_sums(const T* x, index_t rows, index_t cols, T* s) noexcept {
    using V = typename Vec<T>::type;
    constexpr int L = Vec<T>::lanes;
    index_t j = 0;
    for (; j + 2 * L <= cols; j += 2 * L) {
        V s0 = vload<V>(x + j), s1 = vload<V>(x + j + L);
        for (index_t r = 1; r < rows; ++r) {
            s0 += vload<V>(x + r * cols + j);
            s1 += vload<V>(x + r * cols + j + L);
        }
        vstore(s + j, s0);
        vstore(s + j + L, s1);
    }
    for (; j + L <= cols; j += L) {
        V s0 = vload<V>(x + j);
        for (index_t r = 1; r < rows; ++r) s0 += vload<V>(x + r * cols + j);
        vstore(s + j, s0);
    }
    for (; j < cols; ++j) {
        T sj = x[j];
        for (index_t r = 1; r < rows; ++r) sj += x[r * cols + j];
        s[j] = sj;
    }
}

}  // namespace
}  // namespace gd::kernels::GD_ISA_NS
