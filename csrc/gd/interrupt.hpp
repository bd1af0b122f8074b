// Cooperative interruption of long calls: a hook the caller provides (the bindings run Python's
// signal handlers in it) and the clock that decides when to call it.
#pragma once

#include <chrono>

namespace gd {

// A hook called between pieces of work, at most every `interval`: returns true to stop.
struct Interrupt {
    bool (*poll)(void* context) = nullptr;
    void* context = nullptr;
    std::chrono::steady_clock::duration interval = std::chrono::milliseconds(50);
};

// What a long call consults between layers, batches and row panels of large products: true
// once the hook has asked to stop (and from then on). Between polls it only reads the clock
// (a vDSO call, no system call), so it can be asked often. One per call, used by one thread.
class StopCheck {
public:
    explicit StopCheck(const Interrupt& interrupt) noexcept
        : interrupt_(interrupt), last_poll_(std::chrono::steady_clock::now()) {}

    bool operator()() noexcept {
        if (stopped_) return true;
        if (interrupt_.poll == nullptr) return false;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_poll_ < interrupt_.interval) return false;
        last_poll_ = now;
        stopped_ = interrupt_.poll(interrupt_.context);
        return stopped_;
    }
    bool stopped() const noexcept { return stopped_; }

private:
    Interrupt interrupt_;
    std::chrono::steady_clock::time_point last_poll_;
    bool stopped_ = false;
};

}  // namespace gd
