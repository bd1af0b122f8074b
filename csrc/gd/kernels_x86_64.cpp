// The kernels of kernels.hpp for x86-64 (compile flags in CMakeLists.txt).
#define GD_ISA_NS isa_x86_64
#define GD_ISA_NAME "x86-64"
// SSE2's own width: 32-byte vectors on SSE2 compiled to element-by-element moves through the
// stack (~1.4 GFLOP/s, 5-6x slower than these).
#define GD_VECTOR_BYTES 16
// GEMM register tile: 4 rows x 2 vectors (16 xmm registers, no FMA: a multiply and an add per
// step; 4 x 3 and 6 x 2 measured the same). ~8 GFLOP/s, as OpenBLAS's SSE kernel (Nehalem) from
// ~32^3 on, which is faster for A^T B and A B^T from ~2^14 multiply-adds (docs/design.md,
// "Kernel choice"): the own kernel only below.
#define GD_GEMM_TILE_ROWS 4
#define GD_GEMM_TILE_VECTORS 2
#define GD_OWN_GEMM_LIMITS {index_t(1) << 17, index_t(1) << 14, index_t(1) << 13}
#include "kernels_table.hpp"
