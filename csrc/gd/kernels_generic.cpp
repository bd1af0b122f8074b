// The kernels of kernels.hpp for any other CPU (aarch64, ...): GCC/Clang vector extensions at a
// portable 16-byte width (NEON, SSE2, ...), no instruction-set flags (CMakeLists.txt).
#define GD_ISA_NS isa_generic
#define GD_ISA_NAME "generic"
#define GD_VECTOR_BYTES 16
// GEMM register tile and limits: a portable guess (not measured on such a CPU): 4 rows x
// 2 vectors, and the limits the x86-64 tables had before they were measured per table.
#define GD_GEMM_TILE_ROWS 4
#define GD_GEMM_TILE_VECTORS 2
#define GD_OWN_GEMM_LIMITS {index_t(1) << 18, index_t(1) << 17, index_t(1) << 17}
#include "kernels_table.hpp"
