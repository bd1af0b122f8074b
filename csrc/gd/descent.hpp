// Gradient descent on a compiled function of a vector: gd.minimize when `fun` is a C function
// (NLopt's convention). The heavy ball of python/gdcore/reference/descent.py, step for step:
// the same formulas in the same order, the same stopping checks in the same order, so that
// both give the same iterates. Pure C++: the bindings (bind_minimize.cpp) hand it a pointer.
#pragma once

#include <vector>

#include "codes.hpp"
#include "interrupt.hpp"

namespace gd {

// The objective: its value at x[0..n), and its gradient written to grad[0..n) when grad is not
// null (NLopt's nlopt_func). `data` is passed through untouched.
using ObjectiveFunction = double (*)(int n, const double* x, double* grad, void* data);

// The hyper-parameters of one descent (checked by the Python layer: lr > 0, momentum in
// [0, 1), max_iter >= 0, tol >= 0, all finite).
struct DescentConfig {
    double lr = 0.1;
    double momentum = 0.0;
    long long max_iter = 10000;
    double tol = 1e-8;
};

// How a descent ended. `fun` and `grad_norm` are at the last iterate kept (x on return).
struct DescentResult {
    DescentStatus status = DescentStatus::max_iter;
    long long nit = 0;        // steps taken (rows of the path - 1)
    double fun = 0.0;
    double grad_norm = 0.0;
    double limit = 0.0;       // the blow-up threshold, 1e12 * max(1, |fun(x0)|)
    long long unfilled = -1;  // grad_not_filled: the first entry of grad left unwritten
};

// A grad entry the objective did not write keeps these bits: a quiet NaN with a payload that
// no arithmetic on finite numbers produces (each call's grad is filled with it first).
constexpr unsigned long long unwritten_grad_bits = 0x7ff8676463000001ULL;

// Descend from x[0..n) with the heavy ball v <- momentum * v + grad, x <- x - lr * v. On return
// x is the last finite iterate and `path` holds every iterate from x0, row after row (n values
// each; it is cleared first). Stops on convergence (|grad| <= tol), after max_iter steps, on
// divergence, or when `interrupt` asks (polled every few hundred steps). Throws std::bad_alloc
// when the path cannot grow.
DescentResult descend(ObjectiveFunction fun, void* data, int n, double* x,
                      const DescentConfig& config, std::vector<double>& path,
                      const Interrupt& interrupt);

}  // namespace gd
