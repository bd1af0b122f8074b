// The helper pool behind threads::run_chunks: a few threads that spin briefly, then sleep,
// waiting for chunks of a product to claim.
#include "threads.hpp"

#include <pthread.h>
#if defined(__linux__)
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gd::threads {
namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// True on a helper thread, and on a caller while it offers work: run_chunks called from inside
// a chunk then runs alone (a caller must not try to lock the posting mutex it holds, and a
// helper has no helpers).
thread_local bool inside_pool_work = false;

// The work of one run_chunks call, shared by the caller and the helpers that took it.
struct Job {
    ChunkFn work = nullptr;
    void* context = nullptr;
    int chunks = 0;
    std::atomic<int> next{0};        // the next chunk to claim
    std::atomic<int> by_helpers{0};  // chunks the helpers ran

    // Claims and runs chunks until none is left; returns how many this thread ran.
    int run() noexcept {
        int ran = 0;
        for (int i = next.fetch_add(1); i < chunks; i = next.fetch_add(1)) {
            work(context, i);
            ++ran;
        }
        return ran;
    }
};

// A helper's mailbox. idle -> posted (the caller offers a job) -> taken (the helper accepted
// it) -> done (it ran out of chunks) -> idle (the caller saw it). The caller may also take an
// offer back, posted -> idle, when the helper never came: the helper then has nothing to wait for.
enum State : int { idle, posted, taken, done };

struct alignas(64) Helper {
    std::atomic<int> state{idle};
    Job* job = nullptr;                  // written before state = posted
    std::atomic<bool> sleeping{false};
    std::mutex mutex;
    std::condition_variable wake;

    // The helper thread: wait for an offer, spinning first, then sleeping; run it; repeat.
    void loop(void (*on_start)()) noexcept {
        inside_pool_work = true;
        if (on_start != nullptr) on_start();
        const auto spin = std::chrono::microseconds(spin_microseconds);
        for (;;) {
            const auto until = std::chrono::steady_clock::now() + spin;
            for (int polls = 1; state.load(std::memory_order_relaxed) != posted; ++polls) {
                cpu_relax();
                if (polls % 64 == 0 && std::chrono::steady_clock::now() > until) {
                    std::unique_lock<std::mutex> lock(mutex);
                    sleeping.store(true);
                    wake.wait(lock, [this] { return state.load() == posted; });
                    sleeping.store(false);
                    break;
                }
            }
            int expected = posted;
            if (!state.compare_exchange_strong(expected, taken)) continue;  // taken back
            Job* claimed = job;
            const int ran = claimed->run();
            claimed->by_helpers.fetch_add(ran);
            state.store(done, std::memory_order_release);
        }
    }
};

struct Pool {
    // Held by the one caller that offers work to the helpers (others run their chunks alone)
    // and by ensure_helpers while it adds one.
    std::mutex posting;
    std::vector<std::unique_ptr<Helper>> helpers;  // slots never move
    std::atomic<int> size{0};
};

// The pool lives until the process ends (its threads are detached and never joined: joining
// at exit could wait on a thread stopped mid-way). After fork() the child has none of the
// threads, so it starts a new, empty pool (the parent's is abandoned, not touched).
std::atomic<Pool*> current{nullptr};

void after_fork_in_child() noexcept { current.store(new (std::nothrow) Pool); }

Pool* pool() noexcept {
    Pool* p = current.load(std::memory_order_acquire);
    if (p != nullptr) return p;
    static std::once_flag once;
    std::call_once(once, [] {
        current.store(new (std::nothrow) Pool);
        pthread_atfork(nullptr, nullptr, &after_fork_in_child);
    });
    return current.load(std::memory_order_acquire);
}

}  // namespace

int max_helpers() noexcept {
    int cpus = 0;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
#endif
    if (cpus <= 0) cpus = int(std::thread::hardware_concurrency());
    return std::max(0, cpus - 1);
}

int pool_size() noexcept {
    Pool* p = pool();
    return p == nullptr ? 0 : p->size.load();
}

int ensure_helpers(int wanted, void (*on_start)()) noexcept {
    Pool* p = pool();
    if (p == nullptr) return 0;
    wanted = std::min(wanted, max_helpers());
    std::lock_guard<std::mutex> lock(p->posting);
    try {
        while (int(p->helpers.size()) < wanted) {
            p->helpers.reserve(std::size_t(wanted));
            auto helper = std::make_unique<Helper>();
            Helper* h = helper.get();
            std::thread(&Helper::loop, h, on_start).detach();
            p->helpers.push_back(std::move(helper));
            p->size.store(int(p->helpers.size()));
        }
    } catch (...) {  // std::system_error (no more threads), std::bad_alloc: keep what runs
    }
    return p->size.load();
}

Outcome run_chunks(ChunkFn work, void* context, int chunks, int helpers,
                   void (*waiting)(void* context)) noexcept {
    Job job;
    job.work = work;
    job.context = context;
    job.chunks = chunks;
    Pool* p = pool();
    std::unique_lock<std::mutex> posting;
    if (p != nullptr && chunks > 1 && helpers > 0 && !inside_pool_work)
        posting = std::unique_lock<std::mutex>(p->posting, std::try_to_lock);
    struct Inside {  // this thread offers work until the end of the call
        bool was;
        explicit Inside(bool now) : was(inside_pool_work) { inside_pool_work |= now; }
        ~Inside() { inside_pool_work = was; }
    } inside(posting.owns_lock());
    const int offered =
        posting.owns_lock() ? std::min({helpers, int(p->helpers.size()), chunks - 1}) : 0;
    unsigned asleep = 0;  // bit h: helper h was asleep when offered the work
    for (int h = 0; h < offered; ++h) {
        Helper& helper = *p->helpers[std::size_t(h)];
        helper.job = &job;
        helper.state.store(posted);
        if (helper.sleeping.load()) {
            asleep |= 1u << (h % 32);
            std::lock_guard<std::mutex> lock(helper.mutex);
            helper.wake.notify_one();
        }
    }
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const int own = job.run();
    if (offered == 0) return Outcome{};
    const auto ran = clock::now();
    Outcome outcome;
    bool woken = false;  // a helper that was asleep took chunks: its lateness was its waking
    for (int h = 0; h < offered; ++h) {
        Helper& helper = *p->helpers[std::size_t(h)];
        int expected = posted;
        if (helper.state.compare_exchange_strong(expected, idle)) {  // never came
            if (!(asleep & (1u << (h % 32)))) outcome.contended = true;
            continue;
        }
        // It took the job: its chunks finish soon (it stops claiming once none is left).
        if (asleep & (1u << (h % 32))) woken = true;
        for (int polls = 1; helper.state.load(std::memory_order_acquire) != done; ++polls) {
            cpu_relax();
            if (polls % 64 == 0 && waiting != nullptr) waiting(context);
            if (polls % 1024 == 0) std::this_thread::yield();  // it may share our core
        }
        helper.state.store(idle, std::memory_order_relaxed);
    }
    outcome.by_helpers = job.by_helpers.load();
    // The helpers' chunks would have cost the caller about own_time / own each.
    const auto waited = clock::now() - ran;
    const auto own_time = ran - start;
    if (!woken && own > 0 && waited * own > own_time * outcome.by_helpers)
        outcome.contended = true;
    return outcome;
}

}  // namespace gd::threads
