// L-BFGS on the full-batch objective of a network (objective.hpp): the two-loop recursion with
// H0 = (s'y / y'y) I over the last history_size pairs, steps along it found by the Moré–Thuente
// line search (line_search.hpp), with the rules SciPy's L-BFGS-B follows when no variable is
// bounded (docs/design.md, "L-BFGS").
#pragma once

#include <cstdint>

#include "codes.hpp"
#include "interrupt.hpp"
#include "losses.hpp"
#include "network.hpp"
#include "objective.hpp"

namespace gd {

// The solver's settings, from lbfgs_step's float64 configuration vector (layout: codes.def,
// GD_LBFGS). max_fun may be infinite (no budget); the counts are whole numbers.
struct LbfgsConfig {
    double lr = 1.0;                // scales every first trial step
    int history_size = 10;          // pairs (s, y) kept
    std::int64_t max_iter = 20;     // iterations per step
    std::int64_t max_eval = 25;     // evaluations per step (checked after each iteration)
    double tolerance_grad = 1e-7;   // converged when max |g| <= this
    double tolerance_change = 1e-9; // converged when (f_old - f) <= this * max(|f_old|, |f|, 1)
    bool line_search = true;        // strong Wolfe search, or a fixed step of lr
    double max_fun = 0.0;           // stop once the evaluations in all exceed this
    std::int64_t max_ls = 20;       // evaluations per line search

    static LbfgsConfig from_config(const double* config) noexcept;

    // State arrays per parameter: [g, d, x0, g_trial, s_0, y_0, s_1, y_1, ...] (codes.def).
    int n_slots() const noexcept { return state_slots(Optimizer::lbfgs, false, history_size); }
};

struct LbfgsResult {
    double loss = 0.0;         // the objective where the step started (NaN: parameters not
                               // finite after it)
    bool interrupted = false;  // the Interrupt hook asked to stop: the step ended early
};

// One optimizer step: up to config.max_iter iterations on the objective of all n rows of x
// (targets y, sample weights or null; the regularisers' l2 and label smoothing, never their
// dropout: the objective must be deterministic for the line search), updating the parameters, `state` (config.n_slots()
// arrays per parameter W0, b0, W1, b1, ...) and `run` (codes.def, GD_LBFGS_RUN: the objective
// and its readiness, the counts, the history's ring position, why the step ended) in place;
// step[0] counts the steps. run's n_pairs <= history_size and newest < history_size (the
// caller checks). `interrupt` is polled between evaluations, layers and row panels; when it
// asks to stop, the step ends after its last whole iteration (a line search in progress is
// undone). May throw std::bad_alloc while growing the workspace, before anything changes.
template <class T>
LbfgsResult lbfgs_step(Network<T>& net, const T* x, index_t n, Targets<T> y,
                       const T* sample_weight, const Regularisers& reg,
                       const LbfgsConfig& config, T* const* state, double* run,
                       std::int64_t* step, const Interrupt& interrupt);

}  // namespace gd
