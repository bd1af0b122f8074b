// The kernels of kernels.hpp for avx512 (compile flags in CMakeLists.txt).
#define GD_ISA_NS isa_avx512
#define GD_ISA_NAME "avx512"
#define GD_VECTOR_BYTES 64
#include "kernels_table.hpp"
