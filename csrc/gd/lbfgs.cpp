// The L-BFGS driver. Vectors are the network's parameters W0, b0, W1, b1, ... taken together:
// a "slot" names one state array per parameter, and the helpers below run over all of them.
// Scalars (dot products, step lengths) are double; vector arithmetic is in T.
#include "lbfgs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "finite.hpp"
#include "line_search.hpp"
#include "objective.hpp"

namespace gd {
namespace {

// The slots of each parameter's state arrays.
constexpr int slot_g = 0;        // gradient at the parameters
constexpr int slot_d = 1;        // search direction
constexpr int slot_x0 = 2;       // parameters where the line search started
constexpr int slot_g_trial = 3;  // gradient at the trial point
constexpr int slot_pairs = 4;    // then s_k, y_k for k = 0 .. history_size - 1
constexpr double machine_eps = std::numeric_limits<double>::epsilon();

// The parameters as one vector, and the slots of the state.
template <class T>
struct Vectors {
    std::vector<T*> params;
    std::vector<index_t> sizes;
    T* const* state = nullptr;
    int n_slots = 0;

    T* at(int slot, std::size_t p) const noexcept { return state[p * n_slots + slot]; }

    double dot(int a, int b) const noexcept {
        double total = 0.0;
        for (std::size_t p = 0; p < params.size(); ++p) {
            const T* u = at(a, p);
            const T* v = at(b, p);
            double sum = 0.0;
            for (index_t i = 0; i < sizes[p]; ++i) sum += double(u[i]) * double(v[i]);
            total += sum;
        }
        return total;
    }
    double max_abs(int a) const noexcept {
        double m = 0.0;
        for (std::size_t p = 0; p < params.size(); ++p) {
            const T* u = at(a, p);
            for (index_t i = 0; i < sizes[p]; ++i) {
                const double v = std::abs(double(u[i]));
                if (std::isnan(v)) return v;
                m = std::max(m, v);
            }
        }
        return m;
    }
    // y_slot += alpha * x_slot
    void axpy(double alpha, int x, int y) const noexcept {
        const T a = T(alpha);
        for (std::size_t p = 0; p < params.size(); ++p) {
            const T* u = at(x, p);
            T* v = at(y, p);
            for (index_t i = 0; i < sizes[p]; ++i) v[i] = v[i] + a * u[i];
        }
    }
    void scale(double alpha, int a) const noexcept {
        const T s = T(alpha);
        for (std::size_t p = 0; p < params.size(); ++p) {
            T* v = at(a, p);
            for (index_t i = 0; i < sizes[p]; ++i) v[i] = s * v[i];
        }
    }
    void copy(int from, int to) const noexcept {
        for (std::size_t p = 0; p < params.size(); ++p)
            std::copy(at(from, p), at(from, p) + sizes[p], at(to, p));
    }
    void negate(int from, int to) const noexcept {
        for (std::size_t p = 0; p < params.size(); ++p) {
            const T* u = at(from, p);
            T* v = at(to, p);
            for (index_t i = 0; i < sizes[p]; ++i) v[i] = -u[i];
        }
    }
    void save_params(int to) const noexcept {
        for (std::size_t p = 0; p < params.size(); ++p)
            std::copy(params[p], params[p] + sizes[p], at(to, p));
    }
    void load_params(int from) const noexcept {
        for (std::size_t p = 0; p < params.size(); ++p)
            std::copy(at(from, p), at(from, p) + sizes[p], params[p]);
    }
    // params = x0 + stp * d
    void move_params(double stp) const noexcept {
        const T t = T(stp);
        for (std::size_t p = 0; p < params.size(); ++p) {
            const T* x0 = at(slot_x0, p);
            const T* d = at(slot_d, p);
            T* x = params[p];
            for (index_t i = 0; i < sizes[p]; ++i) x[i] = x0[i] + t * d[i];
        }
    }
    // s_slot = stp * d, y_slot = g_trial - g
    void store_pair(double stp, int s, int y) const noexcept {
        const T t = T(stp);
        for (std::size_t p = 0; p < params.size(); ++p) {
            const T* d = at(slot_d, p);
            const T* g = at(slot_g, p);
            const T* gt = at(slot_g_trial, p);
            T* sv = at(s, p);
            T* yv = at(y, p);
            for (index_t i = 0; i < sizes[p]; ++i) {
                sv[i] = t * d[i];
                yv[i] = gt[i] - g[i];
            }
        }
    }
    bool params_finite() const noexcept {
        for (std::size_t p = 0; p < params.size(); ++p)
            if (!all_finite(params[p], sizes[p])) return false;
        return true;
    }
};

int s_slot(int k) { return slot_pairs + 2 * k; }
int y_slot(int k) { return slot_pairs + 2 * k + 1; }

// d = -H g by the two-loop recursion over the n_pairs newest pairs (ring buffer ending at
// `newest`), H0 = (s'y / y'y) I from the newest pair; d = -g without pairs.
template <class T>
void two_loop(const Vectors<T>& v, int history_size, int n_pairs, int newest) {
    v.negate(slot_g, slot_d);
    std::vector<double> alpha(static_cast<std::size_t>(n_pairs));
    std::vector<double> rho(static_cast<std::size_t>(n_pairs));
    for (int j = 0; j < n_pairs; ++j) {  // newest to oldest
        const int k = (newest - j + history_size) % history_size;
        rho[j] = 1.0 / v.dot(y_slot(k), s_slot(k));
        alpha[j] = rho[j] * v.dot(s_slot(k), slot_d);
        v.axpy(-alpha[j], y_slot(k), slot_d);
    }
    if (n_pairs > 0)
        v.scale(v.dot(s_slot(newest), y_slot(newest)) / v.dot(y_slot(newest), y_slot(newest)),
                slot_d);
    for (int j = n_pairs - 1; j >= 0; --j) {  // oldest to newest
        const int k = (newest - j + history_size) % history_size;
        const double beta = rho[j] * v.dot(y_slot(k), slot_d);
        v.axpy(alpha[j] - beta, s_slot(k), slot_d);
    }
}

// A count from the float64 vector: whole, clamped to [0, 2^62] (a cast out of range would be
// undefined; infinity means no limit).
std::int64_t count(double v) noexcept {
    constexpr double most = 4611686018427387904.0;  // 2^62
    if (!(v >= 0.0)) return 0;
    return v >= most ? std::int64_t(most) : std::int64_t(v);
}

}  // namespace

LbfgsConfig LbfgsConfig::from_config(const double* config) noexcept {
    LbfgsConfig c;
    c.lr = config[lbfgs_index::lr];
    c.history_size = int(count(config[lbfgs_index::history_size]));
    c.max_iter = count(config[lbfgs_index::max_iter]);
    c.max_eval = count(config[lbfgs_index::max_eval]);
    c.tolerance_grad = config[lbfgs_index::tolerance_grad];
    c.tolerance_change = config[lbfgs_index::tolerance_change];
    c.line_search = config[lbfgs_index::line_search] != 0.0;
    c.max_fun = config[lbfgs_index::max_fun];
    c.max_ls = count(config[lbfgs_index::max_ls]);
    return c;
}

template <class T>
LbfgsResult lbfgs_step(Network<T>& net, const T* x, index_t n, Targets<T> y,
                       const T* sample_weight, const Regularisers& reg,
                       const LbfgsConfig& config, T* const* state, double* run,
                       std::int64_t* step, const Interrupt& interrupt) {
    net.reserve(n);  // before anything changes (may throw bad_alloc)

    // Setup: the parameters and the gradient buffers as slot pointers.
    const index_t n_layers = net.n_layers();
    Vectors<T> v;
    v.state = state;
    v.n_slots = config.n_slots();
    std::vector<T*> g_w, g_b, gt_w, gt_b;
    for (index_t i = 0; i < n_layers; ++i) {
        const DenseLayer<T>& l = net.layer(i);
        v.params.push_back(l.weights);
        v.sizes.push_back(l.n_inputs * l.n_outputs);
        v.params.push_back(l.bias);
        v.sizes.push_back(l.n_outputs);
        g_w.push_back(v.at(slot_g, std::size_t(2 * i)));
        g_b.push_back(v.at(slot_g, std::size_t(2 * i + 1)));
        gt_w.push_back(v.at(slot_g_trial, std::size_t(2 * i)));
        gt_b.push_back(v.at(slot_g_trial, std::size_t(2 * i + 1)));
    }
    StopCheck stop(interrupt);
    // The regularisers without dropout: L-BFGS needs one deterministic objective.
    Regularisers objective_reg = reg;
    objective_reg.dropout = nullptr;
    auto evaluate = [&](bool trial) {
        T value = T(0);
        if (!objective_gradient(net, x, n, y, sample_weight, objective_reg, 0,
                                trial ? gt_w.data() : g_w.data(), trial ? gt_b.data() : g_b.data(),
                                &value, &stop))
            return std::numeric_limits<double>::quiet_NaN();  // stopped
        return double(value);
    };
    const int m = config.history_size;
    const LineSearch limits;  // L-BFGS-B's tolerances and step bounds

    LbfgsResult result;
    run[lbfgs_run::status] = double(int(LbfgsStatus::running));
    run[lbfgs_run::step_iterations] = 0.0;
    run[lbfgs_run::step_evaluations] = 0.0;

    // The objective where we stand: kept from the last step unless the caller cleared `ready`
    // (a new fit: the data may have changed).
    if (run[lbfgs_run::ready] == 0.0) {
        const double f0 = evaluate(false);
        if (stop.stopped()) {
            result.interrupted = true;
            result.loss = std::numeric_limits<double>::quiet_NaN();
            return result;
        }
        run[lbfgs_run::loss] = f0;
        run[lbfgs_run::ready] = 1.0;
        run[lbfgs_run::evaluations] += 1.0;
        run[lbfgs_run::step_evaluations] += 1.0;
    }
    double f = run[lbfgs_run::loss];
    result.loss = f;
    if (!std::isfinite(f)) {  // diverged: nothing to follow
        step[0] += 1;
        return result;
    }

    auto finish = [&](LbfgsStatus status) { run[lbfgs_run::status] = double(int(status)); };
    // After a failed direction or line search: forget the pairs and retry along -g
    // (L-BFGS-B's restart), true; false when there were none, and the run gives up.
    auto restart = [&](int n_pairs) {
        if (n_pairs == 0) return false;
        run[lbfgs_run::n_pairs] = 0.0;
        run[lbfgs_run::resets] += 1.0;
        return true;
    };
    if (run[lbfgs_run::evaluations] > config.max_fun) finish(LbfgsStatus::max_fun);
    else if (v.max_abs(slot_g) <= config.tolerance_grad) finish(LbfgsStatus::tolerance_grad);
    else {
        for (;;) {
            // 1. Direction: d = -H g (the newest pairs), and the first trial step: 1/||d||
            //    on the very first iteration (L-BFGS-B's), else 1; both times lr.
            int n_pairs = int(run[lbfgs_run::n_pairs]);
            const int newest = int(run[lbfgs_run::newest]);
            two_loop(v, m, n_pairs, newest);
            const double gd = v.dot(slot_g, slot_d);
            if (!(gd < 0.0)) {  // not a descent direction
                if (restart(n_pairs)) continue;
                finish(LbfgsStatus::line_search);
                break;
            }
            const double dnorm = std::sqrt(v.dot(slot_d, slot_d));
            double stp = run[lbfgs_run::iterations] == 0.0
                             ? std::min(1.0 / dnorm, limits.stpmax) * config.lr
                             : config.lr;
            stp = std::min(stp, limits.stpmax);
            v.save_params(slot_x0);

            // 2. Line search: evaluations at x0 + stp d until dcsrch accepts a step.
            double f_trial = std::numeric_limits<double>::quiet_NaN();
            double gd_trial = 0.0;
            std::int64_t evaluations = 0;
            bool accepted = false;
            if (config.line_search) {
                LineSearch search = limits;
                SearchTask task = search.start(f, gd, stp);
                while (task == SearchTask::fg) {
                    if (evaluations >= config.max_ls) {
                        task = SearchTask::error;
                        break;
                    }
                    v.move_params(stp);
                    f_trial = evaluate(true);
                    if (stop.stopped()) break;
                    ++evaluations;
                    gd_trial = v.dot(slot_g_trial, slot_d);
                    if (!std::isfinite(f_trial) || !std::isfinite(gd_trial)) {
                        // Overflow at this step (a safeguard SciPy lacks): halve the way from
                        // the best step so far.
                        stp = search.stx + 0.5 * (stp - search.stx);
                        continue;
                    }
                    task = search.iterate(&stp, f_trial, gd_trial);
                }
                accepted = task == SearchTask::convergence || task == SearchTask::warning;
            } else {
                v.move_params(stp);
                f_trial = evaluate(true);
                if (!stop.stopped()) {
                    evaluations = 1;
                    gd_trial = v.dot(slot_g_trial, slot_d);
                    accepted = true;
                }
            }
            if (stop.stopped()) {  // undo the search in progress: back to the last iteration
                v.load_params(slot_x0);
                result.interrupted = true;
                break;
            }
            run[lbfgs_run::evaluations] += double(evaluations);
            run[lbfgs_run::step_evaluations] += double(evaluations);
            if (!accepted) {  // back to x0
                v.load_params(slot_x0);
                if (restart(n_pairs)) continue;
                finish(LbfgsStatus::line_search);
                break;
            }

            // 3. Accept: the pair (s, y) unless its curvature s'y is not clearly positive
            //    (L-BFGS-B's test, with s'y formed from the directional derivatives).
            const double f_old = f;
            f = f_trial;
            const double sy = (gd_trial - gd) * stp;
            if (sy > machine_eps * (-gd * stp)) {
                const int k = n_pairs == 0 ? 0 : (newest + 1) % m;
                v.store_pair(stp, s_slot(k), y_slot(k));
                run[lbfgs_run::newest] = double(k);
                run[lbfgs_run::n_pairs] = double(std::min(n_pairs + 1, m));
            } else {
                run[lbfgs_run::skipped] += 1.0;
            }
            v.copy(slot_g_trial, slot_g);
            run[lbfgs_run::loss] = f;
            run[lbfgs_run::iterations] += 1.0;
            run[lbfgs_run::step_iterations] += 1.0;

            // 4. Stop: converged, out of budget, or this step's share done.
            if (v.max_abs(slot_g) <= config.tolerance_grad) {
                finish(LbfgsStatus::tolerance_grad);
                break;
            }
            // (SciPy's signed test after a line search, which only descends; |change| for
            // fixed steps, which may climb, as torch.)
            const double change = config.line_search ? f_old - f : std::abs(f_old - f);
            if (change <= config.tolerance_change *
                              std::max({std::abs(f_old), std::abs(f), 1.0})) {
                finish(LbfgsStatus::tolerance_change);
                break;
            }
            if (run[lbfgs_run::evaluations] > config.max_fun) {
                finish(LbfgsStatus::max_fun);
                break;
            }
            if (run[lbfgs_run::step_iterations] >= double(config.max_iter) ||
                run[lbfgs_run::step_evaluations] >= double(config.max_eval))
                break;
            if (stop()) {
                result.interrupted = true;
                break;
            }
        }
    }
    if (!result.interrupted || run[lbfgs_run::step_iterations] > 0.0) step[0] += 1;
    if (!v.params_finite()) result.loss = std::numeric_limits<double>::quiet_NaN();
    return result;
}

template LbfgsResult lbfgs_step<float>(Network<float>&, const float*, index_t, Targets<float>,
                                       const float*, const Regularisers&, const LbfgsConfig&,
                                       float* const*, double*, std::int64_t*, const Interrupt&);
template LbfgsResult lbfgs_step<double>(Network<double>&, const double*, index_t,
                                        Targets<double>, const double*, const Regularisers&,
                                        const LbfgsConfig&, double* const*, double*,
                                        std::int64_t*, const Interrupt&);

}  // namespace gd
