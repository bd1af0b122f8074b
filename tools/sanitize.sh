#!/usr/bin/env bash
# Build gdcore's C++ extension with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# test suite under them. Exits non-zero when a test fails or a sanitizer reports anything
# (in pytest itself or in any subprocess a test starts).
#
#   tools/sanitize.sh                          # the whole suite
#   tools/sanitize.sh tests/test_boundary.py -x  # arguments go to pytest (paths from the repo)
#
# The build goes to its own virtual environment and build folder, never the dev install:
#   GDCORE_ASAN_VENV  (default build/asan-venv)  fresh venv with gdcore + the test extras
#   GDCORE_ASAN_BUILD (default build/asan)       persistent CMake build folder (incremental)
#   PYTHON            (default python3)          interpreter the venv is made from
#   CXX               (default c++)              compiler (gcc or clang)
#   ASAN_LIB                                     sanitizer runtime to preload (found from CXX)
# Python itself is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD); leak
# detection is off (the interpreter keeps memory until exit by design) and PYTHONMALLOC=malloc
# lets ASan see Python's allocations too. Not part of CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${GDCORE_ASAN_VENV:-$ROOT/build/asan-venv}
BUILD=${GDCORE_ASAN_BUILD:-$ROOT/build/asan}
PYTHON=${PYTHON:-python3}
CXX=${CXX:-c++}
REPORTS=$BUILD/reports
FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"

say() { printf '\n== %s\n' "$*" >&2; }

# --- the sanitizer runtime that must come first in the process -----------------------------
if [[ -z "${ASAN_LIB:-}" ]]; then
    if "$CXX" --version 2>/dev/null | grep -qi clang; then
        ASAN_LIB=$("$CXX" -print-file-name=libclang_rt.asan-x86_64.so)
    else
        ASAN_LIB=$("$CXX" -print-file-name=libasan.so)
    fi
fi
if [[ ! -f "$ASAN_LIB" ]]; then
    echo "sanitize.sh: no ASan runtime found for $CXX (got '$ASAN_LIB'); set ASAN_LIB" >&2
    exit 2
fi
# The C++ runtime too: python does not link it, and ASan's __cxa_throw interceptor must find
# the real one when it starts (else the first C++ exception aborts with "CHECK failed").
CXXLIB=$(readlink -f "$("$CXX" -print-file-name=libstdc++.so)")

# --- a fresh venv with the build and test dependencies --------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
say "installing build and test dependencies"
# The build requirements, and the test extra as pyproject.toml lists it (one list to keep).
mapfile -t TEST_EXTRA < <("$PY" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["test"]))' \
    "$ROOT/pyproject.toml")
"$PY" -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13" "scipy-openblas32>=0.3.28" \
    "numpy>=1.23" "${TEST_EXTRA[@]}"

# --- build and install gdcore with the sanitizers (no build isolation: reuse the venv) -------
say "building gdcore with $FLAGS into $BUILD"
CXX="$CXX" "$PY" -m pip install --quiet --no-deps --no-build-isolation --force-reinstall "$ROOT" \
    -Cbuild-dir="$BUILD" \
    -Ccmake.build-type=RelWithDebInfo \
    -Ccmake.define.CMAKE_CXX_FLAGS="$FLAGS"

# --- run the suite under the sanitizers -------------------------------------------------------
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export LD_PRELOAD="$ASAN_LIB:$CXXLIB${LD_PRELOAD:+:$LD_PRELOAD}"
ASAN_DEFAULTS="detect_leaks=0:halt_on_error=1:exitcode=86:detect_stack_use_after_return=1"
ASAN_DEFAULTS+=":check_initialization_order=1:log_path=$REPORTS/asan"
export ASAN_OPTIONS="$ASAN_DEFAULTS${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
UBSAN_DEFAULTS="print_stacktrace=1:halt_on_error=1:exitcode=87:log_path=$REPORTS/ubsan"
export UBSAN_OPTIONS="$UBSAN_DEFAULTS${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONMALLOC=malloc
export PYTHONFAULTHANDLER=1
unset GDCORE_BACKEND  # the compiled core must be what runs

# The tests must import the sanitized build from the venv, not the dev tree: run from a folder
# where "gdcore" is not importable, and check what got imported.
cd "$ROOT/tests"
say "checking the installed extension"
"$PY" - <<'EOF'
import gdcore, gdcore._backend as b
info = gdcore.build_info()
print("gdcore from", gdcore.__file__)
print("backend", info["backend"], "| flags", info.get("cxx_flags"))
if "-fsanitize=address" not in info.get("cxx_flags", ""):
    raise SystemExit("sanitize.sh: the imported gdcore._core was not built with -fsanitize=address")
if not b._core_engines_available():
    print("sanitize.sh: warning: the core has no training engines yet; only its module is checked")
EOF

# The reporting itself works: a deliberate heap overflow (through libc's memset, which ASan
# intercepts) must leave a report file.
say "self-check: a deliberate overflow must be reported"
OVERFLOW="import ctypes as c; b = c.create_string_buffer(8); c.memset(c.addressof(b), 0, 64)"
"$PY" -c "$OVERFLOW" 2>/dev/null && { echo "sanitize.sh: the overflow went unnoticed" >&2; exit 2; }
if ! compgen -G "$REPORTS/asan.*" > /dev/null; then
    echo "sanitize.sh: ASan wrote no report for the deliberate overflow (log_path broken?)" >&2
    exit 2
fi
rm -f "$REPORTS"/*

say "running the tests under ASan + UBSan (reports go to $REPORTS)"
# Paths among the arguments are relative to the repository; without any, the whole suite.
ARGS=()
TARGETS=()
for arg in "$@"; do
    if [[ "$arg" != -* && -e "$ROOT/${arg%%::*}" ]]; then
        TARGETS+=("$ROOT/$arg")
    else
        ARGS+=("$arg")
    fi
done
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("$ROOT/tests")
status=0
"$PY" -m pytest "${TARGETS[@]}" -q -p no:cacheprovider --rootdir="$ROOT" ${ARGS[@]+"${ARGS[@]}"} \
    || status=$?

if compgen -G "$REPORTS/*" > /dev/null; then
    say "sanitizer reports:"
    for f in "$REPORTS"/*; do
        echo "--- $f" >&2
        cat "$f" >&2
    done
    [[ $status -eq 0 ]] && status=1
fi
if [[ $status -eq 0 ]]; then
    say "clean: no sanitizer reports, all tests passed"
else
    say "FAILED (exit status $status)"
fi
exit $status
