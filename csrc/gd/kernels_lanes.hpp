// The lane products of train_epoch_many's lane groups (train_lanes.cpp): one product for the
// networks of a group at once, element e of every matrix stored as G consecutive values (lane l:
// network l; G = B / sizeof(T) for a lane vector of B = 64 or 32 bytes, lane_count<T> or half).
// Each lane is computed exactly as this table's gemm (kernels_gemm.hpp) computes that network's
// product alone: the same multiply-adds in the same order for every element, so a lane equals
// the one-network call bit for bit. The orders:
//   chain        the register tiles: acc = 0, then acc += a(i, p) b(p, j) for p = 0, 1, ...
//   dot          the one-column product (gemv_dot): L partial sums over p = q (mod L) below
//                the last whole vector, folded pairwise as hsum, then the rest in order
//   interleaved  the one-row tail (tail_panel with m == 1): four sums over p = q (mod 4) below
//                k_safe (the remainder into the first), the rows from k_safe into the second,
//                then (s0 + s1) + (s2 + s3)
// with the same expressions, so the compiler contracts them into the same multiply-adds.
// Part of kernels_table.hpp.
#pragma once

#include <type_traits>

#include "kernels_vectors.hpp"

namespace gd::kernels::GD_ISA_NS {
namespace {

// One element of a lane array (B bytes: G = B / sizeof(T) lanes) as vectors the instruction
// set has: GCC lowers a vector type wider than the hardware's poorly (a scalar times a 64-byte
// vector went through the stack on AVX2, element by element), but handles arrays of its native
// vectors well.
template <class T, int B>
struct LaneVec {
    static constexpr int native_bytes = B < GD_VECTOR_BYTES ? B : GD_VECTOR_BYTES;
    typedef T Native __attribute__((vector_size(native_bytes)));
    typedef T Unaligned
        __attribute__((vector_size(native_bytes), aligned(alignof(T)), may_alias));
    static constexpr int pieces = B / native_bytes;
    static constexpr index_t lanes = B / index_t(sizeof(T));
    static constexpr index_t piece_lanes = native_bytes / index_t(sizeof(T));
    Native v[pieces];
};

template <class T, int B>
GD_INLINE LaneVec<T, B>& operator+=(LaneVec<T, B>& x, const LaneVec<T, B>& y) noexcept {
    for (int s = 0; s < LaneVec<T, B>::pieces; ++s) x.v[s] += y.v[s];
    return x;
}
template <class T, int B>
GD_INLINE LaneVec<T, B> operator+(LaneVec<T, B> x, const LaneVec<T, B>& y) noexcept {
    return x += y;
}
// acc += a * b, piece by piece in one expression each, as a tile writes it (acc += a(r, p) * b):
// the product stays a value the compiler contracts into a fused multiply-add wherever it
// contracts the tile's (a product returned through a temporary vector could be stored first,
// and then the sum rounds twice: it did in the sanitizer build, -O2). a: one value for every
// lane (a shared operand) or a lane vector.
template <class T, int B>
GD_INLINE void madd_into(LaneVec<T, B>& acc, T a, const LaneVec<T, B>& b) noexcept {
    for (int s = 0; s < LaneVec<T, B>::pieces; ++s) acc.v[s] += a * b.v[s];
}
template <class T, int B>
GD_INLINE void madd_into(LaneVec<T, B>& acc, const LaneVec<T, B>& a,
                         const LaneVec<T, B>& b) noexcept {
    for (int s = 0; s < LaneVec<T, B>::pieces; ++s) acc.v[s] += a.v[s] * b.v[s];
}

template <class T, int B>
GD_INLINE LaneVec<T, B> lanes_at(const T* p, index_t element) noexcept {
    using L = LaneVec<T, B>;
    L x;
    for (int s = 0; s < L::pieces; ++s)
        x.v[s] = *reinterpret_cast<const typename L::Unaligned*>(p + element * L::lanes +
                                                                 s * L::piece_lanes);
    return x;
}

template <class T, int B>
GD_INLINE void store_lanes(T* p, index_t element, const LaneVec<T, B>& x) noexcept {
    using L = LaneVec<T, B>;
    for (int s = 0; s < L::pieces; ++s)
        *reinterpret_cast<typename L::Unaligned*>(p + element * L::lanes + s * L::piece_lanes) =
            x.v[s];
}

// Operand A of a lane product: its own value per lane, or one value for every lane (the
// network input X, shared by all networks of a group).
template <class T, int B, bool Shared>
GD_INLINE auto a_at(const T* a, index_t element) noexcept {
    if constexpr (Shared) return a[element];
    else return lanes_at<T, B>(a, element);
}

// The store of C[i, j] with the epilogue, in Tile::store's order (alpha 1, beta 0).
template <class T, int B>
GD_INLINE void lane_store(LaneVec<T, B> out, T* c, index_t ldc, index_t i, index_t j,
                          const Epilogue<T>& ep) noexcept {
    using N = typename LaneVec<T, B>::Native;
    if (ep.bias != nullptr) out += lanes_at<T, B>(ep.bias, j);
    if (ep.relu)
        for (int s = 0; s < LaneVec<T, B>::pieces; ++s) out.v[s] = out.v[s] < N{} ? N{} : out.v[s];
    if (ep.mask != nullptr) {
        const LaneVec<T, B> mask = lanes_at<T, B>(ep.mask, i * ep.ldm + j);
        for (int s = 0; s < LaneVec<T, B>::pieces; ++s)
            out.v[s] = mask.v[s] > N{} ? out.v[s] : N{};
    }
    store_lanes(c, i * ldc + j, out);
}

// How the one-network gemm sums C[i, j]: chain everywhere unless `dot` (every element), or
// interleaved for rows >= tail_row and columns >= tail_col (k_safe as tail_panel's).
struct LanePlan {
    bool dot = false;
    index_t tail_row, tail_col, k_safe = 0;
};

// The plan of gemm(trans_a, trans_b, m, n, k, ..., lda, ldb, ...) in kernels_gemm.hpp: its
// branches, in its order.
template <class T>
LanePlan lane_plan(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, index_t lda,
                   index_t ldb) noexcept {
    constexpr index_t L = Vec<T>::lanes;
    LanePlan plan;
    plan.tail_row = m;
    plan.tail_col = n;
    if (one_column<T>(trans_a, trans_b, n, k)) {  // gemv_dot
        plan.dot = true;
        return plan;
    }
    if (narrow_c<T>(trans_a, m, n, k)) {
        // C^T by gemm_direct(n, m): one row when n == 1, whose last m % L columns (our rows)
        // take the tail; op(B) of that product is A as stored (row stride lda).
        if (n == 1 && m % L != 0) {
            plan.tail_row = m - m % L;
            plan.tail_col = 0;
            plan.k_safe = tail_safe_depth<T>(k, m % L, lda);
        }
        return plan;
    }
    if (m == 1 && n % L != 0) {  // gemm_direct's one row: the last n % L columns
        plan.tail_row = 0;
        plan.tail_col = n - n % L;
        plan.k_safe = tail_safe_depth<T>(k, n % L, trans_b ? n : ldb);  // packed B: stride n
    }
    return plan;
}

// The chains of an R x J block of C (rows i.., columns j..): R J independent sums in registers,
// each B vector loaded once for the R rows.
template <class T, int B, bool SharedA, int R, int J>
GD_INLINE void lane_block(index_t i, index_t j, index_t k, const T* a, index_t ars, index_t acs,
                          const T* b, index_t brs, index_t bcs, T* c, index_t ldc,
                          const Epilogue<T>& ep) noexcept {
    using V = LaneVec<T, B>;
    V acc[R][J];
    for (int r = 0; r < R; ++r)
        for (int q = 0; q < J; ++q) acc[r][q] = V{};
    for (index_t p = 0; p < k; ++p) {
        V bp[J];
        for (int q = 0; q < J; ++q) bp[q] = lanes_at<T, B>(b, p * brs + (j + q) * bcs);
        for (int r = 0; r < R; ++r) {
            const auto ap = a_at<T, B, SharedA>(a, (i + r) * ars + p * acs);
            for (int q = 0; q < J; ++q) madd_into(acc[r][q], ap, bp[q]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int q = 0; q < J; ++q) lane_store<T, B>(acc[r][q], c, ldc, i + r, j + q, ep);
}

// Independent sums the registers hold at once: 8 lane vectors of one register each (16 or 32
// registers), 4 of two, 2 of four (SSE2, generic: 16 registers).
template <class T, int B>
inline constexpr int lane_sums =
    LaneVec<T, B>::pieces == 1 ? 8 : LaneVec<T, B>::pieces == 2 ? 4 : 2;

// The chains of rows [i0, i1) x columns [j0, j1) of C, in R x J blocks, then the last columns
// in R x 1 and the last rows in 1 x J and 1 x 1 blocks.
template <class T, int B, bool SharedA, int R, int J>
void lane_chains(index_t i0, index_t i1, index_t j0, index_t j1, index_t k, const T* a,
                 index_t ars, index_t acs, const T* b, index_t brs, index_t bcs, T* c,
                 index_t ldc, const Epilogue<T>& ep) noexcept {
    index_t i = i0;
    for (; i + R <= i1; i += R) {
        index_t j = j0;
        for (; j + J <= j1; j += J)
            lane_block<T, B, SharedA, R, J>(i, j, k, a, ars, acs, b, brs, bcs, c, ldc, ep);
        for (; j < j1; ++j)
            lane_block<T, B, SharedA, R, 1>(i, j, k, a, ars, acs, b, brs, bcs, c, ldc, ep);
    }
    for (; i < i1; ++i) {
        index_t j = j0;
        for (; j + J <= j1; j += J)
            lane_block<T, B, SharedA, 1, J>(i, j, k, a, ars, acs, b, brs, bcs, c, ldc, ep);
        for (; j < j1; ++j)
            lane_block<T, B, SharedA, 1, 1>(i, j, k, a, ars, acs, b, brs, bcs, c, ldc, ep);
    }
}

// lane_chains with blocks as wide as C allows (up to 4 columns) and lane_sums sums in all.
template <class T, int B, bool SharedA>
void lane_chain_region(index_t i0, index_t i1, index_t j0, index_t j1, index_t k, const T* a,
                       index_t ars, index_t acs, const T* b, index_t brs, index_t bcs, T* c,
                       index_t ldc, const Epilogue<T>& ep) noexcept {
    constexpr int S = lane_sums<T, B>;
    const index_t width = j1 - j0;
    if (width >= 4 && S >= 4)
        lane_chains<T, B, SharedA, S / 4, 4>(i0, i1, j0, j1, k, a, ars, acs, b, brs, bcs, c, ldc,
                                             ep);
    else if (width >= 2)
        lane_chains<T, B, SharedA, S / 2, 2>(i0, i1, j0, j1, k, a, ars, acs, b, brs, bcs, c, ldc,
                                             ep);
    else
        lane_chains<T, B, SharedA, S, 1>(i0, i1, j0, j1, k, a, ars, acs, b, brs, bcs, c, ldc, ep);
}

template <class T, int B, bool SharedA>
GD_INLINE void lane_dot(index_t i, index_t k, const T* a, index_t ars, index_t acs, const T* b,
                        index_t brs, T* c, index_t ldc, const Epilogue<T>& ep) noexcept {
    using V = LaneVec<T, B>;
    constexpr index_t L = Vec<T>::lanes;
    const index_t kv = k - k % L;
    V part[L];
    for (index_t q = 0; q < L; ++q) part[q] = V{};
    for (index_t p0 = 0; p0 < kv; p0 += L)
        for (index_t q = 0; q < L; ++q)
            madd_into(part[q], a_at<T, B, SharedA>(a, i * ars + (p0 + q) * acs),
                      lanes_at<T, B>(b, (p0 + q) * brs));
    for (index_t w = L; w > 1; w /= 2)  // hsum: lanes q and q + w/2 of the first w
        for (index_t q = 0; q < w / 2; ++q) part[q] = part[q] + part[q + w / 2];
    V dot = part[0];
    for (index_t p = kv; p < k; ++p)
        madd_into(dot, a_at<T, B, SharedA>(a, i * ars + p * acs), lanes_at<T, B>(b, p * brs));
    lane_store<T, B>(dot, c, ldc, i, 0, ep);
}

template <class T, int B, bool SharedA>
GD_INLINE void lane_interleaved(index_t i, index_t j, index_t k, index_t k_safe, const T* a,
                                index_t ars, index_t acs, const T* b, index_t brs, index_t bcs,
                                T* c, index_t ldc, const Epilogue<T>& ep) noexcept {
    using V = LaneVec<T, B>;
    V acc[4] = {V{}, V{}, V{}, V{}};
    const auto add = [&](V& sum, index_t p) {
        madd_into(sum, a_at<T, B, SharedA>(a, i * ars + p * acs),
                  lanes_at<T, B>(b, p * brs + j * bcs));
    };
    index_t p = 0;
    for (; p + 4 <= k_safe; p += 4)
        for (int q = 0; q < 4; ++q) add(acc[q], p + q);
    for (; p < k_safe; ++p) add(acc[0], p);
    for (p = k_safe; p < k; ++p) add(acc[1], p);
    lane_store<T, B>((acc[0] + acc[1]) + (acc[2] + acc[3]), c, ldc, i, j, ep);
}

// Rows [i0, i1) of the product of `plan` (the whole product's plan: each element is summed
// as in the whole product).
template <class T, int B, bool SharedA>
void lane_product(const LanePlan& plan, index_t i0, index_t i1, bool trans_a, bool trans_b,
                  index_t n, index_t k, const T* a, index_t lda, const T* b, index_t ldb, T* c,
                  index_t ldc, const Epilogue<T>& ep) noexcept {
    const index_t ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;  // op(A)(i, p)
    const index_t brs = trans_b ? 1 : ldb, bcs = trans_b ? ldb : 1;  // op(B)(p, j)
    if (plan.dot) {
        for (index_t i = i0; i < i1; ++i)
            lane_dot<T, B, SharedA>(i, k, a, ars, acs, b, brs, c, ldc, ep);
        return;
    }
    // Rows above tail_row are chains throughout; below it, up to tail_col, then interleaved.
    // (No std::min/max here: kernels_table.hpp's rule, no standard-library code in a table.)
    const index_t tail = plan.tail_row < i0 ? i0 : plan.tail_row > i1 ? i1 : plan.tail_row;
    lane_chain_region<T, B, SharedA>(i0, tail, 0, n, k, a, ars, acs, b, brs, bcs, c, ldc, ep);
    lane_chain_region<T, B, SharedA>(tail, i1, 0, plan.tail_col, k, a, ars, acs, b, brs, bcs, c,
                                  ldc, ep);
    for (index_t i = tail; i < i1; ++i)
        for (index_t j = plan.tail_col; j < n; ++j)
            lane_interleaved<T, B, SharedA>(i, j, k, plan.k_safe, a, ars, acs, b, brs, bcs, c, ldc,
                                         ep);
}

template <class T, int B>
void lane_gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const T* a,
               index_t lda, bool a_shared, const T* b, index_t ldb, T* c, index_t ldc,
               Epilogue<T> ep, LaneRows<T> rows) noexcept {
    const LanePlan plan = lane_plan<T>(trans_a, trans_b, m, n, k, lda, ldb);
    const auto product = [&](index_t i0, index_t i1) {
        if (a_shared)
            lane_product<T, B, true>(plan, i0, i1, trans_a, trans_b, n, k, a, lda, b, ldb, c,
                                     ldc, ep);
        else
            lane_product<T, B, false>(plan, i0, i1, trans_a, trans_b, n, k, a, lda, b, ldb, c,
                                      ldc, ep);
    };
    if constexpr (std::is_same_v<T, float>) {
        if (rows.tanh || rows.tanh_of != nullptr) {
            constexpr index_t G = index_t(B) / index_t(sizeof(T));
            const index_t row_bytes = n * index_t(B);  // (about 8 KiB of C at a time)
            const index_t chunk = row_bytes < 8192 ? 8192 / row_bytes : 1;
            for (index_t i0 = 0; i0 < m; i0 += chunk) {
                const index_t i1 = m - i0 < chunk ? m : i0 + chunk;
                product(i0, i1);
                float* ci = c + i0 * ldc * G;  // (rows i0..i1 of C: contiguous when ldc == n)
                const index_t size = (i1 - i0) * n * G;
                if (rows.tanh) tanh_map(ci, ci, size);
                else tanh_backward_map(rows.tanh_of + i0 * ldc * G, ci, ci, size);
            }
            return;
        }
    }
    product(0, m);
}

// column_sums on lane arrays: s[j] = x[0, j] + x[1, j] + ..., rows in order.
template <class T, int B>
void lane_column_sums(const T* x, index_t rows, index_t cols, T* s) noexcept {
    using V = LaneVec<T, B>;
    for (index_t j = 0; j < cols; ++j) {
        V sum = lanes_at<T, B>(x, j);
        for (index_t r = 1; r < rows; ++r) sum += lanes_at<T, B>(x, r * cols + j);
        store_lanes<T, B>(s, j, sum);
    }
}

}  // namespace
}  // namespace gd::kernels::GD_ISA_NS
