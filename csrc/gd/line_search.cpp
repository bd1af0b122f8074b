// dcsrch and dcstep, ported from SciPy's scipy/optimize/_dcsrch.py (itself MINPACK-2's Fortran),
// statement by statement so that the NumPy twin and SciPy's L-BFGS-B take the same steps.
#include "line_search.hpp"

#include <algorithm>
#include <cmath>

namespace gd {
namespace {

constexpr double p5 = 0.5, p66 = 0.66, xtrapl = 1.1, xtrapu = 4.0;

double sign(double v) noexcept { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0); }

}  // namespace

SearchTask LineSearch::start(double f, double g, double stp) noexcept {
    if (stp < stpmin || stp > stpmax || !(g < 0.0) || ftol < 0.0 || gtol < 0.0 || xtol < 0.0 ||
        stpmin < 0.0 || stpmax < stpmin)
        return SearchTask::error;
    brackt = false;
    stage = 1;
    finit = f;
    ginit = g;
    gtest = ftol * ginit;
    width = stpmax - stpmin;
    width1 = width / p5;
    stx = 0.0;
    fx = finit;
    gx = ginit;
    sty = 0.0;
    fy = finit;
    gy = ginit;
    stmin = 0.0;
    stmax = stp + xtrapu * stp;
    return SearchTask::fg;
}

SearchTask LineSearch::iterate(double* stp_io, double f, double g) noexcept {
    double stp = *stp_io;
    const double ftest = finit + stp * gtest;
    if (stage == 1 && f <= ftest && g >= 0.0) stage = 2;

    // The tests for warnings, then for convergence (which wins), as dcsrch orders them.
    SearchTask task = SearchTask::fg;
    if (brackt && (stp <= stmin || stp >= stmax)) task = SearchTask::warning;  // rounding
    if (brackt && stmax - stmin <= xtol * stmax) task = SearchTask::warning;   // xtol
    if (stp == stpmax && f <= ftest && g <= gtest) task = SearchTask::warning;
    if (stp == stpmin && (f > ftest || g >= gtest)) task = SearchTask::warning;
    if (f <= ftest && std::abs(g) <= gtol * -ginit) task = SearchTask::convergence;
    if (task != SearchTask::fg) return task;

    // In the first stage, while the step gives no sufficient decrease but f(stp) <= f(stx),
    // use the modified function psi(stp) = f(stp) - f(0) - ftol stp f'(0).
    if (stage == 1 && f <= fx && f > ftest) {
        const double fm = f - stp * gtest;
        double fxm = fx - stx * gtest;
        double fym = fy - sty * gtest;
        const double gm = g - gtest;
        double gxm = gx - gtest;
        double gym = gy - gtest;
        dcstep(&stx, &fxm, &gxm, &sty, &fym, &gym, &stp, fm, gm, &brackt, stmin, stmax);
        fx = fxm + stx * gtest;
        fy = fym + sty * gtest;
        gx = gxm + gtest;
        gy = gym + gtest;
    } else {
        dcstep(&stx, &fx, &gx, &sty, &fy, &gy, &stp, f, g, &brackt, stmin, stmax);
    }

    // Bisect when the interval does not shrink enough.
    if (brackt) {
        if (std::abs(sty - stx) >= p66 * width1) stp = stx + p5 * (sty - stx);
        width1 = width;
        width = std::abs(sty - stx);
    }
    if (brackt) {
        stmin = std::min(stx, sty);
        stmax = std::max(stx, sty);
    } else {
        stmin = stp + xtrapl * (stp - stx);
        stmax = stp + xtrapu * (stp - stx);
    }
    stp = std::min(std::max(stp, stpmin), stpmax);
    // No more progress possible: the best step so far.
    if ((brackt && (stp <= stmin || stp >= stmax)) || (brackt && stmax - stmin <= xtol * stmax))
        stp = stx;
    *stp_io = stp;
    return SearchTask::fg;
}

void dcstep(double* stx, double* fx, double* dx, double* sty, double* fy, double* dy,
            double* stp, double fp, double dp, bool* brackt, double stpmin,
            double stpmax) noexcept {
    const double sgnd = sign(dp) * sign(*dx);
    double stpf;
    if (fp > *fx) {
        // 1. Higher function value: the minimum is bracketed; cubic or quadratic step.
        const double theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        const double s = std::max({std::abs(theta), std::abs(*dx), std::abs(dp)});
        double gamma = s * std::sqrt((theta / s) * (theta / s) - (*dx / s) * (dp / s));
        if (*stp < *stx) gamma = -gamma;
        const double p = (gamma - *dx) + theta;
        const double q = ((gamma - *dx) + gamma) + dp;
        const double r = p / q;
        const double stpc = *stx + r * (*stp - *stx);
        const double stpq =
            *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        if (std::abs(stpc - *stx) <= std::abs(stpq - *stx)) stpf = stpc;
        else stpf = stpc + (stpq - stpc) / 2.0;
        *brackt = true;
    } else if (sgnd < 0.0) {
        // 2. Lower value, derivatives of opposite sign: bracketed; cubic or secant step.
        const double theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        const double s = std::max({std::abs(theta), std::abs(*dx), std::abs(dp)});
        double gamma = s * std::sqrt((theta / s) * (theta / s) - (*dx / s) * (dp / s));
        if (*stp > *stx) gamma = -gamma;
        const double p = (gamma - dp) + theta;
        const double q = ((gamma - dp) + gamma) + *dx;
        const double r = p / q;
        const double stpc = *stp + r * (*stx - *stp);
        const double stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = std::abs(stpc - *stp) > std::abs(stpq - *stp) ? stpc : stpq;
        *brackt = true;
    } else if (std::abs(dp) < std::abs(*dx)) {
        // 3. Lower value, same sign, derivative decreasing in magnitude.
        const double theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        const double s = std::max({std::abs(theta), std::abs(*dx), std::abs(dp)});
        double gamma =
            s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (*dx / s) * (dp / s)));
        if (*stp > *stx) gamma = -gamma;
        const double p = (gamma - dp) + theta;
        const double q = (gamma + (*dx - dp)) + gamma;
        const double r = p / q;
        double stpc;
        if (r < 0.0 && gamma != 0.0) stpc = *stp + r * (*stx - *stp);
        else if (*stp > *stx) stpc = stpmax;
        else stpc = stpmin;
        const double stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if (*brackt) {
            stpf = std::abs(stpc - *stp) < std::abs(stpq - *stp) ? stpc : stpq;
            if (*stp > *stx) stpf = std::min(*stp + p66 * (*sty - *stp), stpf);
            else stpf = std::max(*stp + p66 * (*sty - *stp), stpf);
        } else {
            stpf = std::abs(stpc - *stp) > std::abs(stpq - *stp) ? stpc : stpq;
            stpf = std::min(std::max(stpf, stpmin), stpmax);
        }
    } else {
        // 4. Lower value, same sign, derivative not decreasing: step to the far end.
        if (*brackt) {
            const double theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            const double s = std::max({std::abs(theta), std::abs(*dy), std::abs(dp)});
            double gamma = s * std::sqrt((theta / s) * (theta / s) - (*dy / s) * (dp / s));
            if (*stp > *sty) gamma = -gamma;
            const double p = (gamma - dp) + theta;
            const double q = ((gamma - dp) + gamma) + *dy;
            const double r = p / q;
            stpf = *stp + r * (*sty - *stp);
        } else if (*stp > *stx) {
            stpf = stpmax;
        } else {
            stpf = stpmin;
        }
    }

    // The new interval.
    if (fp > *fx) {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if (sgnd < 0.0) {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    *stp = stpf;
}

}  // namespace gd
