// Run-time choice of the kernels' instruction set (kernels.hpp).
#include "kernels.hpp"

#include <atomic>
#include <cstring>

namespace gd::kernels {
namespace {

bool has_avx2() noexcept {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool has_avx512() noexcept {
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

const Table* best() noexcept {
    if (has_avx512()) return &isa_avx512::table();
    if (has_avx2()) return &isa_avx2::table();
    return &isa_x86_64::table();
}

std::atomic<const Table*>& current() noexcept {
    static std::atomic<const Table*> table{best()};
    return table;
}

}  // namespace

const Table& table() noexcept { return *current().load(std::memory_order_relaxed); }

bool set_isa(const char* isa) noexcept {
    const Table* t = nullptr;
    if (std::strcmp(isa, "auto") == 0) t = best();
    else if (std::strcmp(isa, "x86-64") == 0) t = &isa_x86_64::table();
    else if (std::strcmp(isa, "avx2") == 0 && has_avx2()) t = &isa_avx2::table();
    else if (std::strcmp(isa, "avx512") == 0 && has_avx512()) t = &isa_avx512::table();
    if (t == nullptr) return false;
    current().store(t, std::memory_order_relaxed);
    return true;
}

const char* const* supported_isas(int* count) noexcept {
    static const char* const names[] = {"x86-64", "avx2", "avx512"};
    *count = has_avx512() ? 3 : has_avx2() ? 2 : 1;
    return names;
}

}  // namespace gd::kernels
