// The line search of MINPACK-2 by Moré and Thuente (dcsrch, dcstep), as L-BFGS-B and SciPy use
// it: a step satisfying the strong Wolfe conditions
//     f(stp) <= f(0) + ftol stp f'(0)   and   |f'(stp)| <= gtol |f'(0)|.
// Reverse communication: the caller evaluates f and f' wherever `iterate` asks.
#pragma once

namespace gd {

// What the search wants next: an evaluation at stp, or it is done (converged: both conditions
// hold; warning: the best step it could find, which the caller accepts as L-BFGS-B does), or
// its arguments were wrong.
enum class SearchTask : int { fg, convergence, warning, error };

// The search's tolerances (L-BFGS-B's: ftol 1e-3, gtol 0.9, xtol 0.1, steps in [0, 1e10]) and
// the state one search keeps between evaluations (dcsrch's isave/dsave).
struct LineSearch {
    double ftol = 1e-3;
    double gtol = 0.9;
    double xtol = 0.1;
    double stpmin = 0.0;
    double stpmax = 1e10;

    bool brackt = false;
    int stage = 1;
    double finit = 0.0, ginit = 0.0, gtest = 0.0;
    double stx = 0.0, fx = 0.0, gx = 0.0;
    double sty = 0.0, fy = 0.0, gy = 0.0;
    double stmin = 0.0, stmax = 0.0, width = 0.0, width1 = 0.0;

    // Begin a search from f = f(0) and g = f'(0) (< 0) with the first trial step stp:
    // SearchTask::fg (evaluate at stp), or error for invalid arguments.
    SearchTask start(double f, double g, double stp) noexcept;
    // Given f = f(stp) and g = f'(stp) at the trial step *stp: fg with the next trial step in
    // *stp, or convergence / warning with the accepted step in *stp.
    SearchTask iterate(double* stp, double f, double g) noexcept;
};

// One safeguarded step of dcsrch: updates the interval [stx, sty] that brackets a step
// satisfying the conditions, and the trial step stp (MINPACK-2's dcstep).
void dcstep(double* stx, double* fx, double* dx, double* sty, double* fy, double* dy,
            double* stp, double fp, double dp, bool* brackt, double stpmin,
            double stpmax) noexcept;

}  // namespace gd
