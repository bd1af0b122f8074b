#!/usr/bin/env bash
# The portable build: the C++ sources compile for aarch64 (a cross compiler, -fsyntax-only),
# and the generic kernels (kernels_generic.cpp, the table every CPU but x86-64 uses) compile,
# link and give right answers on this machine. Takes seconds; exits non-zero on any failure.
#
#   tools/check_portable.sh
#
#   AARCH64_CXX  the aarch64 C++ compiler (default aarch64-linux-gnu-g++; Debian/Ubuntu:
#                apt-get install g++-aarch64-linux-gnu). Missing: a message and exit 2.
#   CXX          the host compiler for the generic-kernels run (default g++)
#   PYTHON       the interpreter whose pybind11, Python and OpenBLAS headers are used (python3)
#
# What is checked for aarch64:
#   csrc/gd/*.cpp except the x86-64 kernels (kernels_x86_64/avx2/avx512.cpp, which CMake builds
#     only on x86-64), with the library's flags (CMakeLists.txt) and -Werror; kernels.cpp must
#     refer to the generic table only.
#   csrc/bindings/*.cpp with pybind11's headers and this machine's Python and OpenBLAS headers.
#     Those headers are configured for the host (pyconfig.h, openblas_config.h: x86-64 Linux,
#     the same LP64/glibc data model as aarch64 Linux), so this part is close, not exact.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
AARCH64_CXX=${AARCH64_CXX:-aarch64-linux-gnu-g++}
HOST_CXX=${CXX:-g++}
PYTHON=${PYTHON:-python3}

if ! command -v "$AARCH64_CXX" > /dev/null; then
    echo "check_portable.sh: the aarch64 cross compiler '$AARCH64_CXX' is not installed" \
         "(apt-get install g++-aarch64-linux-gnu, or set AARCH64_CXX)" >&2
    exit 2
fi
if ! command -v "$HOST_CXX" > /dev/null; then
    echo "check_portable.sh: the host compiler '$HOST_CXX' is not installed (set CXX)" >&2
    exit 2
fi

start=$SECONDS
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The flags of CMakeLists.txt (GD_CORE_OPTIONS, GD_KERNEL_OPTIONS for the kernels).
CORE_FLAGS=(-std=c++17 -DNDEBUG -O3 -fno-math-errno -ffp-contract=off -Wall -Wextra -Wno-psabi -Werror)
KERNEL_FLAGS=(-ffp-contract=fast)

# Headers: OpenBLAS's (blas.cpp), pybind11's and Python's (the bindings), gdcore's C API's.
if ! headers=$("$PYTHON" - <<'EOF'
import sysconfig
import pybind11, scipy_openblas32
print(scipy_openblas32.get_include_dir())
print(pybind11.get_include())
print(sysconfig.get_paths()["include"])
EOF
); then
    echo "check_portable.sh: $PYTHON needs pybind11 and scipy-openblas32 for their headers" \
         "(pip install pybind11 scipy-openblas32, or set PYTHON)" >&2
    exit 2
fi
# (and gdcore's own C API header, python/gdcore/include/gdcore/capi.h, as CMakeLists.txt adds it)
INCLUDES=(-Ipython/gdcore/include)
while IFS= read -r dir; do INCLUDES+=("-I$dir"); done <<< "$headers"

# Each compile runs in the background; its output goes to $WORK/<its number>.log.
pids=() names=()
run() {  # run NAME COMMAND...
    local name=$1
    shift
    "$@" > "$WORK/${#pids[@]}.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

echo "== aarch64 ($("$AARCH64_CXX" -dumpfullversion -dumpversion), -fsyntax-only)"
for src in csrc/gd/*.cpp; do
    case "$(basename "$src")" in
        kernels_x86_64.cpp | kernels_avx2.cpp | kernels_avx512.cpp) continue ;;
        kernels_generic.cpp) extra=("${KERNEL_FLAGS[@]}") ;;
        *) extra=() ;;
    esac
    run "aarch64 $src" "$AARCH64_CXX" -fsyntax-only "${CORE_FLAGS[@]}" "${extra[@]}" "${INCLUDES[@]}" "$src"
done
# Code generation too where it matters: kernels.cpp (which tables does it refer to?) and the
# generic kernels' vector code (-O1: the same vector operations, in a few seconds).
run "aarch64 csrc/gd/kernels.cpp (object)" "$AARCH64_CXX" -c "${CORE_FLAGS[@]}" \
    csrc/gd/kernels.cpp -o "$WORK/kernels_aarch64.o"
run "aarch64 csrc/gd/kernels_generic.cpp (object, -O1)" "$AARCH64_CXX" -c "${CORE_FLAGS[@]}" \
    "${KERNEL_FLAGS[@]}" -O1 csrc/gd/kernels_generic.cpp -o "$WORK/kernels_generic_aarch64.o"
for src in csrc/bindings/*.cpp; do
    # The bindings are compiled like the module (CMakeLists.txt: -O3, no -W flags), plus -Wall.
    run "aarch64 $src" "$AARCH64_CXX" -fsyntax-only -std=c++17 -DNDEBUG -O3 -Wall -Wno-psabi \
        -Werror "${INCLUDES[@]}" "$src"
done

echo "== host ($("$HOST_CXX" -dumpmachine)): the generic kernels, built and run"
cat > "$WORK/smoke.cpp" <<'EOF'
// The generic table through kernels.cpp's dispatch (GD_KERNELS_GENERIC), against plain loops.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.hpp"

namespace k = gd::kernels;
static int failures = 0;
static void check(bool ok, const char* what) {
    if (!ok) { std::printf("FAIL: %s\n", what); ++failures; }
}

template <class T>
static void gemm_case(k::GemmFn<T> gemm, bool ta, bool tb, int m, int n, int kk, double tol) {
    std::vector<T> a(m * kk), b(kk * n), c(m * n), want(m * n), bias(n);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = T(std::sin(0.37 * i + 1));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = T(std::cos(0.23 * i + 2));
    for (int j = 0; j < n; ++j) bias[j] = T(0.01 * j - 0.05);
    for (int i = 0; i < m * n; ++i) c[i] = T(0.5);
    const T alpha = T(1.25), beta = T(-0.5);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double s = 0;
            for (int p = 0; p < kk; ++p)
                s += double(ta ? a[p * m + i] : a[i * kk + p]) * double(tb ? b[j * kk + p] : b[p * n + j]);
            double out = alpha * s + beta * 0.5 + bias[j];
            want[i * n + j] = T(out < 0 ? 0 : out);
        }
    static T* work = static_cast<T*>(std::aligned_alloc(64, sizeof(double) * k::gemm_work_elements));
    k::Epilogue<T> ep;
    ep.bias = bias.data();
    ep.relu = true;
    gemm(ta, tb, m, n, kk, alpha, a.data(), ta ? m : kk, b.data(), tb ? kk : n, beta, c.data(), n,
         ep, work);
    double err = 0;
    for (int i = 0; i < m * n; ++i) err = std::fmax(err, std::fabs(double(c[i]) - double(want[i])));
    char what[128];
    std::snprintf(what, sizeof what, "gemm<%zu> ta=%d tb=%d %dx%dx%d: max error %g", sizeof(T),
                  ta, tb, m, n, kk, err);
    check(err <= tol, what);
}

int main() {
    int count = 0;
    const char* const* names = k::supported_isas(&count);
    check(count == 1 && std::strcmp(names[0], "generic") == 0, "supported_isas() == {generic}");
    check(std::strcmp(k::table().isa, "generic") == 0, "table().isa == generic");
    check(k::set_isa("auto") && k::set_isa("generic"), "set_isa(auto), set_isa(generic)");
    check(!k::set_isa("x86-64") && !k::set_isa("avx2") && !k::set_isa("sse9"),
          "set_isa refuses the x86-64 names");
    const k::Table& t = k::table();
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            if (ta && tb) continue;
            for (int m : {1, 3, 9})
                for (int n : {1, 4, 5, 17})
                    for (int kk : {1, 7, 33}) {
                        gemm_case<float>(t.sgemm, ta, tb, m, n, kk, 1e-4);
                        gemm_case<double>(t.dgemm, ta, tb, m, n, kk, 1e-12);
                    }
        }
    const int size = 1001;
    std::vector<float> x(size), y(size), l(size), s(3);
    for (int i = 0; i < size; ++i) x[i] = -20.0f + 40.0f * float(i) / float(size - 1);
    double e_exp = 0, e_tanh = 0, e_sig = 0, e_sp = 0;
    t.exp_f32(x.data(), y.data(), size);
    for (int i = 0; i < size; ++i) e_exp = std::fmax(e_exp, std::fabs(y[i] / std::exp(double(x[i])) - 1));
    t.tanh_f32(x.data(), y.data(), size);
    for (int i = 0; i < size; ++i) e_tanh = std::fmax(e_tanh, std::fabs(y[i] - std::tanh(double(x[i]))));
    t.sigmoid_f32(x.data(), y.data(), size);
    for (int i = 0; i < size; ++i)
        e_sig = std::fmax(e_sig, std::fabs(y[i] - 1 / (1 + std::exp(-double(x[i])))));
    t.softplus_neg_abs_f32(x.data(), l.data(), size);
    for (int i = 0; i < size; ++i) {
        const double want = std::log1p(std::exp(-std::fabs(double(x[i]))));
        e_sp = std::fmax(e_sp, std::fabs(l[i] - want) / std::fmax(want, 1e-30));
    }
    check(e_exp < 1e-6, "exp_f32 within 1e-6 (relative)");
    check(e_tanh < 1e-6, "tanh_f32 within 1e-6");
    check(e_sig < 1e-6, "sigmoid_f32 within 1e-6");
    check(e_sp < 1e-5, "softplus_neg_abs_f32 within 1e-5 (relative)");
    t.column_sums_f32(x.data(), 333, 3, s.data());
    double want0 = 0;
    for (int r = 0; r < 333; ++r) want0 += x[r * 3];
    check(std::fabs(s[0] - want0) < 1e-3, "column_sums_f32");
    std::printf("generic kernels: %s (max errors: exp %.1e, tanh %.1e, sigmoid %.1e, "
                "log1p(exp(-|x|)) %.1e)\n",
                failures ? "FAILED" : "ok", e_exp, e_tanh, e_sig, e_sp);
    return failures ? 1 : 0;
}
EOF
# -O1, not the build's -O3: a few seconds instead of most of a minute, the same arithmetic.
run "host csrc/gd/kernels_generic.cpp (-O1)" "$HOST_CXX" -c "${CORE_FLAGS[@]}" "${KERNEL_FLAGS[@]}" \
    -O1 csrc/gd/kernels_generic.cpp -o "$WORK/kernels_generic.o"
run "host csrc/gd/kernels.cpp -DGD_KERNELS_GENERIC" "$HOST_CXX" -c "${CORE_FLAGS[@]}" \
    -DGD_KERNELS_GENERIC csrc/gd/kernels.cpp -o "$WORK/kernels_host.o"
run "host smoke test" "$HOST_CXX" -c -std=c++17 -O1 -Wall -Icsrc/gd "$WORK/smoke.cpp" -o "$WORK/smoke.o"

failed=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        echo "ok    ${names[$i]}"
    else
        echo "FAIL  ${names[$i]}"
        sed 's/^/      /' "$WORK/$i.log" | head -40
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "check_portable.sh: compile errors (above)" >&2
    exit 1
fi

# aarch64's kernels.cpp must use the generic table and nothing of the x86-64 build.
refs=$("${AARCH64_CXX%g++}nm" -C -u "$WORK/kernels_aarch64.o" 2>/dev/null || nm -C -u "$WORK/kernels_aarch64.o")
if ! grep -q 'isa_generic::table' <<< "$refs" || grep -Eq 'isa_(x86_64|avx2|avx512)::' <<< "$refs"; then
    echo "check_portable.sh: aarch64 kernels.cpp does not refer to the generic table only:" >&2
    grep 'isa_' <<< "$refs" >&2 || true
    exit 1
fi
echo "ok    aarch64 kernels.cpp refers to isa_generic::table() only"

"$HOST_CXX" "$WORK/smoke.o" "$WORK/kernels_host.o" "$WORK/kernels_generic.o" -o "$WORK/smoke"
"$WORK/smoke"
echo "check_portable.sh: passed in $((SECONDS - start)) s"
