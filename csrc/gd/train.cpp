// The epoch loop. Everything it needs is allocated before the first step; a step allocates
// nothing and calls no virtual function.
#include "train.hpp"

#include "batch.hpp"
#include "finite.hpp"
#include "kernels.hpp"
#include "threads.hpp"
#include "train_lanes.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

namespace gd {
namespace {

template <class T>
bool parameters_finite(const Network<T>& net) {
    for (index_t i = 0; i < net.n_layers(); ++i) {
        const DenseLayer<T>& l = net.layer(i);
        if (!all_finite(l.weights, l.n_inputs * l.n_outputs) || !all_finite(l.bias, l.n_outputs))
            return false;
    }
    return true;
}

}  // namespace

template <class T>
EpochRun<T>::EpochRun(Network<T>& net, const EpochData<T>& data, index_t batch_size,
                      const OptimizerConfig& config, const Regularisers& reg, T* const* state,
                      std::int64_t* step) noexcept
    : net_(net), data_(data), batch_size_(batch_size), config_(config), reg_(reg),
      state_(state), step_(step) {}

template <class T>
void EpochRun<T>::step(StopCheck* stop) noexcept {
    const index_t rows = next_rows();
    const index_t start = start_;
    start_ += rows;

    // 1. Run: gather the batch (objective_gradient passes it forward). A batch of zero total
    //    sample weight has no gradient to follow: it is skipped (no update, no step, not in
    //    the loss).
    const batch::Batch<T> b = batch::gather(net_, data_, data_.order + start, rows);
    const double batch_weight = batch::total_weight(b, rows);
    if (!(batch_weight > 0.0)) return;
    // A stop asked for during the forward or backward pass drops this batch: nothing has been
    // updated yet. The dropout masks are those of step t.
    const std::int64_t t = step_[0] + 1;
    // 2.-3. Forward, compute the error (the batch's objective and dL/dZ of the output layer)
    //    and backpropagate into the network's gradient buffers.
    T loss = T(0);
    if (!objective_gradient(net_, b.x, rows, b.y, b.w, reg_, t, net_.weight_gradients(),
                            net_.bias_gradients(), &loss, stop)) {
        ended_ = true;
        return;
    }
    take_step(loss, batch_weight);
}

template <class T>
void EpochRun<T>::take_step(T loss, double batch_weight) noexcept {
    const std::int64_t t = step_[0] + 1;
    if (!count_step(loss, batch_weight)) return;  // stop before this batch's update

    // 4. Update every parameter in place (W0, b0, W1, b1, ...).
    T* const* dw = net_.weight_gradients();
    T* const* db = net_.bias_gradients();
    const int n_slots = config_.n_slots();
    for (index_t i = 0; i < net_.n_layers(); ++i) {
        const DenseLayer<T>& l = net_.layer(i);
        T* const* w_state = state_ + (2 * i) * n_slots;
        T* const* b_state = state_ + (2 * i + 1) * n_slots;
        optimizer_update(config_, t, l.weights, dw[i], w_state, l.n_inputs * l.n_outputs);
        optimizer_update(config_, t, l.bias, db[i], b_state, l.n_outputs);
    }
}

template <class T>
bool EpochRun<T>::count_step(T loss, double batch_weight) noexcept {
    if (!std::isfinite(loss)) {
        non_finite_ = double(loss);
        has_non_finite_ = true;
        ended_ = true;
        return false;
    }
    step_[0] += 1;
    ++steps_;
    weighted_loss_ += double(loss) * batch_weight;
    total_weight_ += batch_weight;
    return true;
}

template <class T>
EpochResult EpochRun<T>::result(bool interrupted) const noexcept {
    EpochResult result;
    result.steps = steps_;
    if (has_non_finite_) {  // the first non-finite batch loss, as it came
        result.loss = non_finite_;
        return result;
    }
    result.interrupted = interrupted;
    result.loss = total_weight_ > 0.0 ? weighted_loss_ / total_weight_
                                      : std::numeric_limits<double>::quiet_NaN();
    // The last update may have overflowed with a finite loss: the epoch then diverged too.
    if (steps_ > 0 && !parameters_finite(net_))
        result.loss = std::numeric_limits<double>::quiet_NaN();
    return result;
}

template <class T>
EpochResult train_epoch(Network<T>& net, const EpochData<T>& data, index_t batch_size,
                        const OptimizerConfig& config, const Regularisers& reg, T* const* state,
                        std::int64_t* step, const Interrupt& interrupt) {
    if (data.n_order <= 0 || batch_size <= 0) {
        EpochResult result;
        result.loss = std::numeric_limits<double>::quiet_NaN();  // no batch: no loss
        return result;
    }

    // Workspace for the largest batch of this epoch (a no-op once it is big enough).
    const index_t max_rows = std::min(batch_size, data.n_order);
    net.reserve(max_rows);
    net.reserve_batch(max_rows, data.y.labels != nullptr, data.sample_weight != nullptr);
    if (reg.dropout) net.reserve_dropout(max_rows);

    EpochRun<T> run(net, data, batch_size, config, reg, state, step);
    StopCheck stop(interrupt);
    while (run.more()) {
        run.step(&stop);
        // Between batches: let the caller stop us (at most every interrupt.interval).
        if (run.more() && stop()) run.end();
    }
    return run.result(stop.stopped());
}

namespace {

// The epochs runs[singles[first, last)], interleaved: round r runs batch r of each run that
// has one left. `stop` is the thread's own check; once it says stop, every one of these runs
// ends.
template <class T>
void run_interleaved(std::vector<EpochRun<T>>& runs, const std::vector<std::size_t>& singles,
                     std::size_t first, std::size_t last, StopCheck& stop) noexcept {
    const auto end_all = [&] {
        for (std::size_t i = first; i < last; ++i) runs[singles[i]].end();
    };
    for (;;) {
        if (stop.stopped()) {  // (a stop inside a pass, or one asked before these began)
            end_all();
            return;
        }
        bool any = false;
        for (std::size_t i = first; i < last; ++i) {
            EpochRun<T>& run = runs[singles[i]];
            if (!run.more()) continue;
            run.step(&stop);
            any |= run.more();
        }
        if (!any) return;
        // Between rounds: let the caller stop us (at most every interrupt.interval).
        if (stop()) {
            end_all();
            return;
        }
    }
}

// The networks of one train_epoch_many call: its lane groups (one chunk each), then the other
// runs cut into chunks of `chunk` runs, which the calling thread and the helper threads
// (threads.hpp) claim in turn: a thread on a busy core takes fewer. Only the calling thread can
// run Python's signal handlers, so it polls `stop` (between its batches, and while it waits for
// the helpers) and raises `stopping`, which the helpers' own checks read.
template <class T>
struct ManyEpochs {
    std::vector<EpochRun<T>>* runs;
    std::vector<LaneGroup<T>>* groups;
    std::vector<std::size_t>* singles;  // the runs outside the groups
    std::size_t chunk;
    std::thread::id caller;
    StopCheck* stop;  // the caller's
    std::atomic<bool> stopping{false};

    static bool flag_raised(void* self) {
        return static_cast<ManyEpochs*>(self)->stopping.load(std::memory_order_relaxed);
    }

    void run_unit(int c, StopCheck& stop) noexcept {
        const std::size_t n_groups = groups->size();
        if (std::size_t(c) < n_groups) {
            (*groups)[std::size_t(c)].run(stop);
            return;
        }
        const std::size_t first = (std::size_t(c) - n_groups) * chunk;
        const std::size_t last = std::min(first + chunk, singles->size());
        run_interleaved(*runs, *singles, first, last, stop);
    }

    static void run_chunk(void* self, int c) noexcept {
        ManyEpochs& many = *static_cast<ManyEpochs*>(self);
        if (std::this_thread::get_id() == many.caller) {
            many.run_unit(c, *many.stop);
            if (many.stop->stopped()) many.stopping.store(true, std::memory_order_relaxed);
            return;
        }
        Interrupt flag;
        flag.poll = &flag_raised;
        flag.context = self;
        flag.interval = std::chrono::steady_clock::duration::zero();
        StopCheck stop(flag);
        many.run_unit(c, stop);
    }

    static void waiting(void* self) noexcept {
        ManyEpochs& many = *static_cast<ManyEpochs*>(self);
        if ((*many.stop)()) many.stopping.store(true, std::memory_order_relaxed);
    }
};

// Lane groups of the eligible runs (train_lanes.hpp): the runs whose jobs same_lanes admits,
// in groups of at most lane_count<T>, and in as many groups as there are threads where that
// leaves min_lanes networks a group; a group of at most lane_count / 2 networks takes lane
// vectors of half the width (half the work). A class of fewer than min_lanes networks is not
// worth a group: its runs stay single. jobs[owner[i]] is the job of runs[i].
template <class T>
void form_groups(std::vector<EpochRun<T>>& runs, const std::vector<EpochJob<T>>& jobs,
                 const std::vector<std::size_t>& owner, std::size_t threads,
                 std::vector<LaneGroup<T>>& groups, std::vector<std::size_t>& singles) {
    constexpr std::size_t full = std::size_t(kernels::lane_count<T>);
    std::vector<std::size_t> pending;
    for (std::size_t i = 0; i < runs.size(); ++i) {
        if (lane_eligible(jobs[owner[i]])) pending.push_back(i);
        else singles.push_back(i);
    }
    while (!pending.empty()) {
        std::vector<std::size_t> members, rest;
        for (const std::size_t i : pending) {
            if (members.empty() || same_lanes(jobs[owner[members.front()]], jobs[owner[i]]))
                members.push_back(i);
            else
                rest.push_back(i);
        }
        pending.swap(rest);
        const std::size_t count = members.size();
        if (count < min_lanes) {
            singles.insert(singles.end(), members.begin(), members.end());
            continue;
        }
        const std::size_t n_groups =
            std::max((count + full - 1) / full, std::min(threads, count / min_lanes));
        const std::size_t size = (count + n_groups - 1) / n_groups;
        for (std::size_t first = 0; first < count; first += size) {
            std::vector<EpochRun<T>*> lane_runs;
            std::vector<const EpochJob<T>*> lane_jobs;
            for (std::size_t m = first; m < std::min(count, first + size); ++m) {
                lane_runs.push_back(&runs[members[m]]);
                lane_jobs.push_back(&jobs[owner[members[m]]]);
            }
            const index_t lanes = index_t(lane_runs.size() <= full / 2 ? full / 2 : full);
            groups.emplace_back(std::move(lane_runs), std::move(lane_jobs), lanes);
        }
    }
}

}  // namespace

template <class T>
void train_epoch_many(std::vector<EpochJob<T>>& jobs, int n_threads,
                      const Interrupt& interrupt) {
    // Every allocation first, on this thread (bad_alloc leaves everything as it was).
    std::vector<EpochRun<T>> runs;
    std::vector<std::size_t> owner;  // the job of each run
    runs.reserve(jobs.size());
    owner.reserve(jobs.size());
    for (std::size_t j = 0; j < jobs.size(); ++j) {
        EpochJob<T>& job = jobs[j];
        if (job.data.n_order <= 0 || job.batch_size <= 0) {
            job.result = EpochResult{};
            job.result.loss = std::numeric_limits<double>::quiet_NaN();  // no batch: no loss
            continue;
        }
        runs.emplace_back(*job.net, job.data, job.batch_size, job.config, job.reg, job.state,
                          job.step);
        owner.push_back(j);
    }
    std::vector<LaneGroup<T>> groups;
    std::vector<std::size_t> singles;
    groups.reserve(runs.size());
    singles.reserve(runs.size());
    // (Groups for the threads that can run: the caller's and the pool's helpers.)
    const int can_run = std::min(std::max(1, n_threads), threads::pool_size() + 1);
    form_groups(runs, jobs, owner, std::size_t(can_run), groups, singles);
    const std::size_t units = groups.size() + singles.size();
    const std::size_t threads =
        std::max<std::size_t>(1, std::min<std::size_t>(std::size_t(std::max(1, n_threads)),
                                                       std::max<std::size_t>(1, units)));
    // Chunks of about a quarter of a thread's share of the single runs: a few networks
    // interleaved, and threads that run slower (a busy core) take fewer chunks.
    StopCheck stop(interrupt);
    ManyEpochs<T> many;
    many.runs = &runs;
    many.groups = &groups;
    many.singles = &singles;
    many.chunk = std::max<std::size_t>(1, singles.size() / (4 * threads));
    many.caller = std::this_thread::get_id();
    many.stop = &stop;
    const int chunks =
        int(groups.size() + (singles.size() + many.chunk - 1) / many.chunk);
    // (The helpers are the pool's: started at import, one per core but this one, up to the
    // thread count; a call asking for more threads than the pool has runs on fewer.)
    threads::run_chunks(&ManyEpochs<T>::run_chunk, &many, chunks, int(threads) - 1,
                        &ManyEpochs<T>::waiting);
    const bool stopped = many.stopping.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < runs.size(); ++i) jobs[owner[i]].result = runs[i].result(stopped);
}

template EpochResult train_epoch<float>(Network<float>&, const EpochData<float>&, index_t,
                                        const OptimizerConfig&, const Regularisers&,
                                        float* const*, std::int64_t*, const Interrupt&);
template EpochResult train_epoch<double>(Network<double>&, const EpochData<double>&, index_t,
                                         const OptimizerConfig&, const Regularisers&,
                                         double* const*, std::int64_t*, const Interrupt&);
template class EpochRun<float>;
template class EpochRun<double>;
template void train_epoch_many<float>(std::vector<EpochJob<float>>&, int, const Interrupt&);
template void train_epoch_many<double>(std::vector<EpochJob<double>>&, int, const Interrupt&);

}  // namespace gd
