// The kernels of kernels.hpp for avx2 (compile flags in CMakeLists.txt).
#define GD_ISA_NS isa_avx2
#define GD_ISA_NAME "avx2"
#define GD_VECTOR_BYTES 32
#include "kernels_table.hpp"
