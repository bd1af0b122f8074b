// The kernels of kernels.hpp for avx2 (compile flags in CMakeLists.txt).
#define GD_ISA_NS isa_avx2
#define GD_ISA_NAME "avx2"
#define GD_VECTOR_BYTES 32
// GEMM register tile: 6 rows x 2 vectors, 12 accumulators + 2 of B + 1 broadcast of the 16 ymm
// registers (4 x 2 left FMA latency exposed; 4 x 3 measured slower). Against OpenBLAS's AVX2
// kernel (Haswell) it is faster up to 96^3 and even at 128^3 (docs/design.md, "Kernel choice").
#define GD_GEMM_TILE_ROWS 6
#define GD_GEMM_TILE_VECTORS 2
#define GD_OWN_GEMM_LIMITS {index_t(1) << 19, index_t(1) << 15, index_t(1) << 18}
#include "kernels_table.hpp"
