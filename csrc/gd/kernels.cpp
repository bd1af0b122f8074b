// Run-time choice of the kernels' instruction set (kernels.hpp).
#include "kernels.hpp"

#include <atomic>
#include <cstring>

// x86-64: three tables, chosen with the CPU's feature bits. Anything else (or a build that
// CMake configured with the generic kernels, GD_KERNELS_GENERIC): kernels_generic.cpp's table.
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(GD_KERNELS_GENERIC)
#define GD_KERNELS_X86_64 1
#endif

namespace gd::kernels {
namespace {

#ifdef GD_KERNELS_X86_64
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

const Table* named(const char* isa) noexcept {
    if (std::strcmp(isa, "x86-64") == 0) return &isa_x86_64::table();
    if (std::strcmp(isa, "avx2") == 0 && has_avx2()) return &isa_avx2::table();
    if (std::strcmp(isa, "avx512") == 0 && has_avx512()) return &isa_avx512::table();
    return nullptr;
}

int supported_count() noexcept { return has_avx512() ? 3 : has_avx2() ? 2 : 1; }
constexpr const char* isa_names[] = {"x86-64", "avx2", "avx512"};
#else
const Table* best() noexcept { return &isa_generic::table(); }

const Table* named(const char* isa) noexcept {
    return std::strcmp(isa, "generic") == 0 ? &isa_generic::table() : nullptr;
}

int supported_count() noexcept { return 1; }
constexpr const char* isa_names[] = {"generic"};
#endif

std::atomic<const Table*>& current() noexcept {
    static std::atomic<const Table*> table{best()};
    return table;
}

}  // namespace

const Table& table() noexcept { return *current().load(std::memory_order_relaxed); }

bool set_isa(const char* isa) noexcept {
    const Table* t = std::strcmp(isa, "auto") == 0 ? best() : named(isa);
    if (t == nullptr) return false;
    current().store(t, std::memory_order_relaxed);
    return true;
}

const char* const* supported_isas(int* count) noexcept {
    *count = supported_count();
    return isa_names;
}

}  // namespace gd::kernels
