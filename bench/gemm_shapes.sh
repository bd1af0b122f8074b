#!/usr/bin/env bash
# Builds bench/gemm_shapes.cpp against this checkout's GEMM sources (blas, threads, the kernel
# tables, with CMakeLists.txt's flags) and scipy-openblas32, then runs it:
#   bench/gemm_shapes.sh [small|medium|sweep|square|all] [rounds] [isa,isa,...]
#   OPENBLAS_CORETYPE=Haswell bench/gemm_shapes.sh small 21 avx2
# PYTHON (default python3) must have scipy_openblas32. The build goes to build/gemm_shapes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
CXX=${CXX:-c++}
OUT=$ROOT/build/gemm_shapes
OB=$("$PYTHON" -c "import scipy_openblas32 as s; print(s.get_lib_dir())")
OBI=$("$PYTHON" -c "import scipy_openblas32 as s; print(s.get_include_dir())")
SRC=$ROOT/csrc/gd
mkdir -p "$OUT"
F=(-std=c++17 -O3 -fno-math-errno -fno-trapping-math -Wall -Wno-psabi -I"$OBI" -I"$SRC")
K=(-ffp-contract=fast)
for f in blas threads kernels; do
    "$CXX" "${F[@]}" -ffp-contract=off -c "$SRC/$f.cpp" -o "$OUT/$f.o"
done
"$CXX" "${F[@]}" "${K[@]}" -c "$SRC/kernels_x86_64.cpp" -o "$OUT/k_x86_64.o"
"$CXX" "${F[@]}" "${K[@]}" -mavx2 -mfma -c "$SRC/kernels_avx2.cpp" -o "$OUT/k_avx2.o"
"$CXX" "${F[@]}" "${K[@]}" -mavx2 -mfma -mavx512f -mavx512dq -mavx512bw -mavx512vl \
    -mprefer-vector-width=512 -c "$SRC/kernels_avx512.cpp" -o "$OUT/k_avx512.o"
"$CXX" "${F[@]}" -c "$ROOT/bench/gemm_shapes.cpp" -o "$OUT/gemm_shapes.o"
"$CXX" "$OUT"/*.o -o "$OUT/gemm_shapes" -L"$OB" -lscipy_openblas -Wl,-rpath,"$OB" -lpthread
exec "$OUT/gemm_shapes" "$@"
