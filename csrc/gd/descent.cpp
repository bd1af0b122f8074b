// gd.minimize over a compiled objective: descend (descent.hpp).
#include "descent.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace gd {

namespace {

// Divergence threshold: the value has grown past this many times max(1, |f(x0)|).
constexpr double blowup = 1e12;
// Steps between two looks at the interrupt hook (which itself reads the clock): a step of a
// cheap compiled function takes nanoseconds, a clock read tens of them.
constexpr long long poll_every = 256;

double unwritten() noexcept {
    double v;
    std::memcpy(&v, &unwritten_grad_bits, sizeof v);
    return v;
}

// The first entry of grad[0..n) that still holds the unwritten marker, or -1.
long long first_unwritten(const double* grad, int n) noexcept {
    for (int i = 0; i < n; ++i) {
        unsigned long long bits;
        std::memcpy(&bits, grad + i, sizeof bits);
        if (bits == unwritten_grad_bits) return i;
    }
    return -1;
}

// The objective at x with its gradient in grad (first filled with the marker).
double evaluate(ObjectiveFunction fun, void* data, int n, const double* x, double* grad) {
    std::fill(grad, grad + n, unwritten());
    return fun(n, x, grad, data);
}

// Euclidean norm as the reference computes it: the square root of the plain sum of squares
// (inf when that sum overflows, as NumPy's norm).
double norm(const double* g, int n) noexcept {
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += g[i] * g[i];
    return std::sqrt(s);
}

}  // namespace

DescentResult descend(ObjectiveFunction fun, void* data, int n, double* x,
                      const DescentConfig& config, std::vector<double>& path,
                      const Interrupt& interrupt) {
    DescentResult r;
    path.clear();
    std::vector<double> g(n), v(n, 0.0), x_new(n), v_new(n), g_new(n);

    double f = evaluate(fun, data, n, x, g.data());
    r.fun = f;
    if (!std::isfinite(f)) {
        r.status = DescentStatus::fun_not_finite_at_x0;
        return r;
    }
    if ((r.unfilled = first_unwritten(g.data(), n)) >= 0) {
        r.status = DescentStatus::grad_not_filled;
        return r;
    }
    r.limit = blowup * std::max(1.0, std::fabs(f));
    path.assign(x, x + n);
    StopCheck stop(interrupt);
    const double lr = config.lr, momentum = config.momentum;

    for (;;) {
        r.grad_norm = norm(g.data(), n);
        if (!std::isfinite(r.grad_norm)) { r.status = DescentStatus::grad_not_finite; break; }
        if (r.grad_norm <= config.tol) { r.status = DescentStatus::converged; break; }
        if (r.nit >= config.max_iter) { r.status = DescentStatus::max_iter; break; }
        if (r.nit % poll_every == poll_every - 1 && stop()) {
            r.status = DescentStatus::interrupted;
            break;
        }
        bool finite = true;
        for (int i = 0; i < n; ++i) {
            v_new[i] = momentum * v[i] + g[i];
            x_new[i] = x[i] - lr * v_new[i];
            finite &= std::isfinite(x_new[i]);
        }
        if (!finite) { r.status = DescentStatus::iterate_not_finite; break; }
        const double f_new = evaluate(fun, data, n, x_new.data(), g_new.data());
        if (!std::isfinite(f_new)) { r.status = DescentStatus::fun_not_finite; break; }
        if ((r.unfilled = first_unwritten(g_new.data(), n)) >= 0) {
            r.status = DescentStatus::grad_not_filled;
            break;
        }
        std::copy(x_new.begin(), x_new.end(), x);
        v.swap(v_new);
        g.swap(g_new);
        f = f_new;
        ++r.nit;
        path.insert(path.end(), x, x + n);  // bad_alloc: the caller's MemoryError
        if (f > r.limit) {
            r.status = DescentStatus::fun_blew_up;
            r.grad_norm = norm(g.data(), n);
            break;
        }
    }
    r.fun = f;
    return r;
}

}  // namespace gd
