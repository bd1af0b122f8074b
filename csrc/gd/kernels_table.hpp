// One instruction set's kernel table (kernels.hpp), written once and compiled per instruction
// set: a kernels_<isa>.cpp defines GD_ISA_NS (its namespace), GD_ISA_NAME, GD_VECTOR_BYTES and
// the GEMM's register tile (GD_GEMM_TILE_ROWS x GD_GEMM_TILE_VECTORS) and its limits against
// OpenBLAS (GD_OWN_GEMM_LIMITS, a GemmLimits) and includes this file, which gathers the kernels
// by concern:
//   kernels_vectors.hpp  the vector type and its loads and stores
//   kernels_gemm.hpp     GEMM, its one-column case and column sums (float and double)
//   kernels_math.hpp     float32 exp, tanh, sigmoid and log1p(exp(-|x|))
//   kernels_lanes.hpp    the GEMM of several networks at once, each as kernels_gemm.hpp's
// and compiles the optimizer's own SGD pass (sgd_pass.hpp) for float32 once more.
// The rule for all of them: everything has internal linkage (an unnamed namespace in GD_ISA_NS)
// except <GD_ISA_NS>::table(), so no ISA-specific copy of a helper can be picked by the linker
// for another ISA. No standard-library calls for the same reason.
#include <type_traits>  // (types only: sgd_pass.hpp's std::true_type, lanes' is_same_v)

#include "kernels.hpp"

#if !defined(GD_ISA_NS) || !defined(GD_VECTOR_BYTES) || !defined(GD_ISA_NAME)
#error "define GD_ISA_NS, GD_ISA_NAME and GD_VECTOR_BYTES before including kernels_table.hpp"
#endif
#if !defined(GD_GEMM_TILE_ROWS) || !defined(GD_GEMM_TILE_VECTORS) || !defined(GD_OWN_GEMM_LIMITS)
#error "define GD_GEMM_TILE_ROWS, GD_GEMM_TILE_VECTORS and GD_OWN_GEMM_LIMITS (the GEMM's) too"
#endif

#define GD_INLINE inline __attribute__((always_inline))

#include "kernels_vectors.hpp"
#include "kernels_gemm.hpp"
#include "kernels_math.hpp"
#include "kernels_lanes.hpp"

namespace gd::kernels::GD_ISA_NS {
namespace {

#include "sgd_pass.hpp"

void sgd_f32(float* p, const float* g, float* buf, index_t size, float lr, float momentum,
             bool nesterov, float weight_decay) noexcept {
    sgd_update(p, g, buf, size, lr, momentum, nesterov, weight_decay);
}

template <index_t L>
void lane_sgd_f32(float* p, const float* g, float* buf, index_t elements, const float* lr,
                  const float* momentum, const float* weight_decay, bool nesterov,
                  bool decay) noexcept {
    sgd_lane_update<float, L>(p, g, buf, elements, lr, momentum, weight_decay, nesterov, decay);
}

constexpr Table the_table{GD_ISA_NAME,           &gemm<float>,        &gemm<double>,
                          &exp_map,              &tanh_map,           &sigmoid_map,
                          &softplus_neg_abs_map, &column_sums<float>, &column_sums<double>,
                          &sgd_f32,              &tanh_backward_map,
                          GemmLimits GD_OWN_GEMM_LIMITS,
                          {&lane_gemm<float, 32>, &lane_gemm<float, 64>},
                          {&lane_gemm<double, 32>, &lane_gemm<double, 64>},
                          {&lane_column_sums<float, 32>, &lane_column_sums<float, 64>},
                          {&lane_column_sums<double, 32>, &lane_column_sums<double, 64>},
                          {&lane_sgd_f32<lane_count<float> / 2>, &lane_sgd_f32<lane_count<float>>}};

}  // namespace

const Table& table() noexcept { return the_table; }

}  // namespace gd::kernels::GD_ISA_NS
