// The kernels of kernels.hpp for avx512 (compile flags in CMakeLists.txt).
#define GD_ISA_NS isa_avx512
#define GD_ISA_NAME "avx512"
#define GD_VECTOR_BYTES 64
// GEMM register tile: 6 rows x 4 vectors, 24 accumulators of the 32 zmm registers (8 x 3 about
// the same, 4 x 2 and 4 x 4 slower). Faster than OpenBLAS's AVX-512 kernel (SkylakeX) for
// A @ B (+ bias, relu) up to 128^3 and A @ B^T (+ relu's mask) at every size it takes; OpenBLAS
// is faster for A^T @ B above ~16^3 (docs/design.md, "Kernel choice").
#define GD_GEMM_TILE_ROWS 6
#define GD_GEMM_TILE_VECTORS 4
#define GD_OWN_GEMM_LIMITS {index_t(1) << 19, index_t(1) << 12, index_t(1) << 18}
#include "kernels_table.hpp"
