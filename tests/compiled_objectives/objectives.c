/* The compiled objectives of tests/test_minimize_compiled.py and bench/minimize_compiled.py, in
   NLopt's convention: double f(int n, const double *x, double *grad, void *data). */
#include <math.h>

/* Rosenbrock in n dimensions. */
double rosen(int n, const double *x, double *grad, void *data) {
    (void)data;
    double f = 0.0;
    if (grad) for (int i = 0; i < n; ++i) grad[i] = 0.0;
    for (int i = 0; i + 1 < n; ++i) {
        double a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
        f += 100.0 * a * a + b * b;
        if (grad) {
            grad[i] += -400.0 * x[i] * a - 2.0 * b;
            grad[i + 1] += 200.0 * a;
        }
    }
    return f;
}

/* 0.5 sum a_i x_i^2 with the curvatures a = (const double *)data. */
double quad(int n, const double *x, double *grad, void *data) {
    const double *a = (const double *)data;
    double f = 0.0;
    for (int i = 0; i < n; ++i) {
        f += 0.5 * a[i] * x[i] * x[i];
        if (grad) grad[i] = a[i] * x[i];
    }
    return f;
}

/* 0.25 sum x^4: large steps overshoot to infinity. */
double quartic(int n, const double *x, double *grad, void *data) {
    (void)data;
    double f = 0.0;
    for (int i = 0; i < n; ++i) {
        f += 0.25 * x[i] * x[i] * x[i] * x[i];
        if (grad) grad[i] = x[i] * x[i] * x[i];
    }
    return f;
}

/* sum x^2 whose gradient is infinite beyond |x_i| >= 3. */
double cliff(int n, const double *x, double *grad, void *data) {
    (void)data;
    double f = 0.0;
    for (int i = 0; i < n; ++i) {
        f += x[i] * x[i];
        if (grad) grad[i] = fabs(x[i]) < 3.0 ? 2.0 * x[i] : INFINITY;
    }
    return f;
}

/* sum x^2, not a number beyond |x_0| > 5. */
double nan_beyond(int n, const double *x, double *grad, void *data) {
    (void)data;
    double f = 0.0;
    for (int i = 0; i < n; ++i) {
        f += x[i] * x[i];
        if (grad) grad[i] = 2.0 * x[i];
    }
    return fabs(x[0]) > 5.0 ? NAN : f;
}

/* Wrong: never writes grad. */
double ignores_grad(int n, const double *x, double *grad, void *data) {
    (void)grad; (void)data;
    double f = 0.0;
    for (int i = 0; i < n; ++i) f += x[i] * x[i];
    return f;
}

/* Wrong: forgets the last entry of grad, from the second call on. */
double partial_grad(int n, const double *x, double *grad, void *data) {
    long long *calls = (long long *)data;
    double f = 0.0;
    for (int i = 0; i < n; ++i) {
        f += x[i] * x[i];
        if (grad && (i + 1 < n || *calls == 0)) grad[i] = 2.0 * x[i];
    }
    ++*calls;
    return f;
}
