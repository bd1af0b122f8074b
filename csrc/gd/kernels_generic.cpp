// The kernels of kernels.hpp for any other CPU (aarch64, ...): GCC/Clang vector extensions at a
// portable 16-byte width (NEON, SSE2, ...), no instruction-set flags (CMakeLists.txt).
#define GD_ISA_NS isa_generic
#define GD_ISA_NAME "generic"
#define GD_VECTOR_BYTES 16
#include "kernels_table.hpp"
