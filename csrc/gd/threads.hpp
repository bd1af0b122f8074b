// gdcore's own helper threads: one product split in chunks, run by the calling thread and by
// helpers that claim chunks as they arrive. A helper that is not running when the work is
// posted (the other core busy with another process) costs nothing: the caller takes back
// every chunk nobody claimed. So more threads can make a product faster but never much slower,
// unlike OpenBLAS's threads, which the caller must wait for (blas.hpp, "Threads").
#pragma once

namespace gd::threads {

// One chunk of work: work(context, chunk) for chunk in [0, chunks).
using ChunkFn = void (*)(void* context, int chunk);

// What run_chunks saw of its helpers.
struct Outcome {
    int by_helpers = 0;      // chunks the helpers ran
    // Signs that the other cores are busy (another process): a helper that was awake
    // (spinning) when offered the work never came, or the caller waited for a helper's chunks
    // longer than they would have taken it (a helper descheduled mid-chunk). A helper that was
    // asleep, whether it never came or came late, is no sign: it was only waking up.
    bool contended = false;
};

// Runs work(context, i) for every i in [0, chunks), each exactly once, on the calling thread and
// on at most `helpers` helper threads (fewer if the pool has fewer: ensure_helpers), claiming
// chunks in order from a shared counter. Returns when every chunk is done. Calls from several
// threads at once are safe: one posts to the helpers, the others run their chunks alone; so is
// a call from inside a chunk (it runs alone). While the caller waits for a helper's last
// chunks it calls waiting(context) about every 10 us, if given (e.g. to poll for signals).
// work must not throw.
Outcome run_chunks(ChunkFn work, void* context, int chunks, int helpers,
                   void (*waiting)(void* context) = nullptr) noexcept;

// Starts helper threads until the pool has `helpers` of them (at most max_helpers()), each
// running on_start() once first (e.g. a BLAS warm-up while memory is plentiful). Returns the
// pool's size (fewer than asked when a thread could not be started).
int ensure_helpers(int helpers, void (*on_start)()) noexcept;
int pool_size() noexcept;
// The most helpers the pool will start: the CPUs this process may use, minus the caller.
int max_helpers() noexcept;

// How long an idle helper spins (plain loads, pause) before it sleeps on a condition variable.
// Products in a training step come microseconds apart, so a spinning helper answers at once;
// between calls it sleeps, leaving the core to other processes.
inline constexpr long spin_microseconds = 50;

}  // namespace gd::threads
