// The integer codes shared with the NumPy reference engine, from their one definition
// (python/gdcore/codes.def), and the index type.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gd {

// Row/column counts and element offsets.
using index_t = std::ptrdiff_t;

// Activation of a layer, A = f(Z).
enum class Activation : int {
#define GD_ACTIVATION(name, code) name = code,
#include "../../python/gdcore/codes.def"
};

// Loss of the output layer.
enum class Loss : int {
#define GD_LOSS(name, code, output) name = code,
#include "../../python/gdcore/codes.def"
};

// Update rule of train_epoch.
enum class Optimizer : int {
#define GD_OPTIMIZER(name, code, slots, momentum_slots) name = code,
#include "../../python/gdcore/codes.def"
};

// Positions in train_epoch's float64 hyper-parameter vector: hyper[hyper_index::lr], ...
namespace hyper_index {
#define GD_HYPER(name, index) constexpr int name = index;
#include "../../python/gdcore/codes.def"
}  // namespace hyper_index

// How many codes of each kind there are (codes run from 0 without gaps).
#define GD_COUNT(...) +1
constexpr int n_activation_codes = 0
#define GD_ACTIVATION GD_COUNT
#include "../../python/gdcore/codes.def"
    ;
constexpr int n_loss_codes = 0
#define GD_LOSS GD_COUNT
#include "../../python/gdcore/codes.def"
    ;
constexpr int n_optimizer_codes = 0
#define GD_OPTIMIZER GD_COUNT
#include "../../python/gdcore/codes.def"
    ;
constexpr int n_hyper = 0
#define GD_HYPER GD_COUNT
#include "../../python/gdcore/codes.def"
    ;
constexpr int n_lbfgs_config = 0
#define GD_LBFGS GD_COUNT
#include "../../python/gdcore/codes.def"
    ;
constexpr int n_lbfgs_run = 0
#define GD_LBFGS_RUN GD_COUNT
#include "../../python/gdcore/codes.def"
    ;
#undef GD_COUNT

// The output activation each loss requires (its code), or any (-1).
namespace loss_output {
constexpr int any = -1;
#define GD_ACTIVATION(name, code) constexpr int name = code;
#include "../../python/gdcore/codes.def"
}  // namespace loss_output

constexpr int required_output_activation(Loss loss) noexcept {
    switch (loss) {
#define GD_LOSS(name, code, output) case Loss::name: return loss_output::output;
#include "../../python/gdcore/codes.def"
    }
    return loss_output::any;
}

// State arrays per parameter and per history pair of `optimizer` (L-BFGS: s and y), else 0.
constexpr int history_slots(Optimizer optimizer) noexcept {
    switch (optimizer) {
#define GD_HISTORY_SLOTS(name, slots) case Optimizer::name: return slots;
#include "../../python/gdcore/codes.def"
        default: return 0;
    }
}

// State arrays per parameter of `optimizer` (its momentum buffers only when momentum > 0; its
// history pairs, history_size of them, for L-BFGS).
constexpr int state_slots(Optimizer optimizer, bool momentum, int history_size = 0) noexcept {
    switch (optimizer) {
#define GD_OPTIMIZER(name, code, slots, momentum_slots) \
    case Optimizer::name: \
        return slots + (momentum ? momentum_slots : 0) + history_slots(optimizer) * history_size;
#include "../../python/gdcore/codes.def"
    }
    return 0;
}

// Positions in lbfgs_step's float64 configuration vector: config[lbfgs_index::max_iter], ...
namespace lbfgs_index {
#define GD_LBFGS(name, index) constexpr int name = index;
#include "../../python/gdcore/codes.def"
}  // namespace lbfgs_index

// Positions in lbfgs_step's float64 run-state vector: run[lbfgs_run::iterations], ...
namespace lbfgs_run {
#define GD_LBFGS_RUN(name, index) constexpr int name = index;
#include "../../python/gdcore/codes.def"
}  // namespace lbfgs_run

// Why the last lbfgs_step ended (run[lbfgs_run::status]).
enum class LbfgsStatus : int {
#define GD_LBFGS_STATUS(name, code) name = code,
#include "../../python/gdcore/codes.def"
};

// Why a descent of gd.minimize ended (descent.hpp's DescentResult::status).
enum class DescentStatus : int {
#define GD_DESCENT_STATUS(name, code) name = code,
#include "../../python/gdcore/codes.def"
};

// Display names, for error messages (the string names of the Python API).
inline const char* activation_name(int code) noexcept {
    switch (Activation(code)) {
#define GD_ACTIVATION(name, code) case Activation::name: return #name;
#include "../../python/gdcore/codes.def"
    }
    return "?";
}
inline const char* loss_name(int code) noexcept {
    switch (Loss(code)) {
#define GD_LOSS(name, code, output) case Loss::name: return #name;
#include "../../python/gdcore/codes.def"
    }
    return "?";
}
inline const char* optimizer_name(int code) noexcept {
    switch (Optimizer(code)) {
#define GD_OPTIMIZER(name, code, slots, momentum_slots) case Optimizer::name: return #name;
#include "../../python/gdcore/codes.def"
    }
    return "?";
}

}  // namespace gd
