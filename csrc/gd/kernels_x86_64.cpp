// The kernels of kernels.hpp for x86-64 (compile flags in CMakeLists.txt).
#define GD_ISA_NS isa_x86_64
#define GD_ISA_NAME "x86-64"
#define GD_VECTOR_BYTES 32
#include "kernels_table.hpp"
