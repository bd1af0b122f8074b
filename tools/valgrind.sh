#!/usr/bin/env bash
# Run a short training workload under valgrind's memcheck: invalid reads and writes, invalid
# frees and overlapping copies in gdcore's compiled core (and anything else in the process).
# Exits non-zero when memcheck reports an error or the workload fails.
#
#   tools/valgrind.sh                  # the gdcore importable by $PYTHON (default python3)
#   VALGRIND_UNDEF=yes tools/valgrind.sh   # also report uses of uninitialised values
#
#   PYTHON          interpreter whose gdcore is checked (default: python3 on PATH)
#   VALGRIND_UNDEF  yes|no (default no): uninitialised-value checks; numpy's and OpenBLAS's
#                   SIMD code make them noisy, so they are off unless asked for
#   VALGRIND_ARGS   extra valgrind arguments
# Python is run with PYTHONMALLOC=malloc (so memcheck sees every allocation) and with the
# distribution's python suppression file when there is one. Leak checking is off: the
# interpreter keeps memory until exit by design. Not part of CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
UNDEF=${VALGRIND_UNDEF:-no}

if ! command -v valgrind > /dev/null; then
    echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

SUPPRESSIONS=()
for supp in "$(dirname "$(command -v valgrind)")/../lib/valgrind/python3.supp" \
            /usr/lib/valgrind/python3.supp /usr/lib/x86_64-linux-gnu/valgrind/python3.supp \
            /usr/share/doc/python3*/valgrind-python.supp; do
    if [[ -f "$supp" ]]; then
        SUPPRESSIONS+=("--suppressions=$supp")
        break
    fi
done

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/gdcore-valgrind.XXXXXX")
trap 'rm -rf "$WORKDIR"' EXIT
# glibc 2.36's dynamic loader compares RPATH tokens ("$ORIGIN", which our extension's RPATH
# uses) with an SSE2 strncmp that reads whole words past the string's end; valgrind < 3.20
# does not redirect it. A known false positive, confined to ld.so's is_dst.
cat > "$WORKDIR/ld-so.supp" <<'EOF'
{
   ld.so is_dst strncmp reads whole words (glibc 2.36, valgrind < 3.20)
   Memcheck:Addr8
   fun:strncmp
   fun:is_dst
}
EOF
SUPPRESSIONS+=("--suppressions=$WORKDIR/ld-so.supp")
WORKLOAD="$WORKDIR/workload.py"
cat > "$WORKLOAD" <<'EOF'
"""A small tour of the compiled core: every loss, activation, optimizer and dtype, the error
paths of the engine, an interrupt inside train_epoch, and two threads."""
import os
import signal
import sys
import threading

import numpy as np

import gdcore as gd
from gdcore import _backend

print("gdcore from", gd.__file__, "| backend", gd.backend(), flush=True)
if not _backend._core_engines_available():
    print("valgrind.sh: warning: no compiled engines; checking the NumPy path only", flush=True)
rng = np.random.default_rng(0)
X = rng.normal(size=(37, 5))
cases = [("mse", "identity"), ("mae", "tanh"), ("huber", "elu"), ("mse", "softmax"),
         ("bce", "sigmoid"), ("cross_entropy", "softmax")]
hidden = ["relu", "leaky_relu", "gelu", "softplus", "sigmoid", "tanh", "elu", "identity"]
optimizers = [lambda: gd.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
              lambda: gd.Adam(lr=0.01, weight_decay=1e-3), lambda: gd.AdamW(lr=0.01),
              lambda: gd.RMSprop(lr=0.01, momentum=0.5)]
for i, (loss, out) in enumerate(cases):
    for dtype in ("float32", "float64"):
        k = 1 if out == "sigmoid" else 3
        net = gd.Network.from_sizes([5, 7, 6, k], activation=hidden[i % len(hidden)],
                                    output_activation=out, loss=loss, dtype=dtype, seed=i)
        if loss == "cross_entropy":
            y = rng.integers(0, k, size=len(X))
            if dtype == "float64":
                y = np.eye(k)[y]  # probabilities instead of labels
        elif loss == "bce":
            y = rng.integers(0, 2, size=len(X)).astype(float)
        else:
            y = rng.normal(size=(len(X), k))
        w = rng.uniform(0.0, 2.0, size=len(X))
        w[:4] = 0.0  # a zero-weight batch
        net.forward(X)
        net.forward(X[0])
        net.loss(X, y, sample_weight=w)
        net.gradients(X, y, sample_weight=w)
        net.fit(X, y, optimizer=optimizers[i % 4](), epochs=3, batch_size=4, sample_weight=w,
                validation_split=0.2, restore_best_weights=True, seed=0)
        net.fit(X, y, optimizer=optimizers[(i + 1) % 4](), epochs=2, batch_size=None)
        net.fit(X, y, optimizer=gd.LBFGS(lr=0.1 if i % 2 else 1.0, history_size=2, max_iter=4,
                                         line_search=None if i % 2 else "strong_wolfe"),
                epochs=3, sample_weight=w)
        gd.find_lr(net, X, y, steps=8, batch_size=5)
        gd.check_gradients(net, X[:3], y[:3], max_checks=20)
        net.fit(X, y, optimizer=gd.SGD(lr=1e6), epochs=3, on_divergence="stop")
        net.save(os.path.join(sys.argv[1], "model.npz"))
        gd.Network.load(os.path.join(sys.argv[1], "model.npz")).forward(X)

# the engine's own checks: errors raised from C++ before any pointer is used
net = gd.Network.from_sizes([5, 4, 3], output_activation="softmax", loss="cross_entropy",
                            dtype="float64", seed=0)
engine = net._engine
bad_calls = [
    lambda: engine.forward(np.zeros((2, 4))),
    lambda: engine.forward(np.zeros((2, 5), dtype=np.float32)),
    lambda: engine.forward(np.asfortranarray(np.zeros((3, 5)))),
    lambda: engine.loss(X, np.full(len(X), 7, dtype=np.int64), None),
    lambda: engine.loss(X, np.zeros(len(X) - 1, dtype=np.int64), None),
    lambda: engine.gradients(X, np.zeros(len(X), dtype=np.int64), None, [], []),
    lambda: engine.train_epoch(X, np.zeros(len(X), dtype=np.int64), None,
                               np.array([0, 99], dtype=np.int64), 2, 0, np.zeros(8), [],
                               np.zeros(1, dtype=np.int64)),
    lambda: engine.train_epoch(X, np.zeros(len(X), dtype=np.int64), None,
                               np.arange(len(X), dtype=np.int64), 2, 1, np.zeros(8), [],
                               np.zeros(1, dtype=np.int64)),
    lambda: engine.lbfgs_step(X, np.zeros(len(X), dtype=np.int64), None,
                              np.r_[1.0, 2.0, np.zeros(7)], [], np.zeros(11),
                              np.zeros(1, dtype=np.int64)),
    lambda: engine.lbfgs_step(X, np.zeros(len(X), dtype=np.int64), None,
                              np.r_[1.0, 1.0, np.zeros(7)],
                              [np.zeros_like(p) for p in net.parameters() for _ in range(6)],
                              np.r_[np.zeros(4), 5.0, np.zeros(6)], np.zeros(1, dtype=np.int64)),
]
for call in bad_calls:
    try:
        call()
    except (ValueError, TypeError, RuntimeError):
        pass
    else:
        raise SystemExit("valgrind.sh: a bad engine call did not raise")

# an interrupt in the middle of a long epoch
big_X = rng.normal(size=(20000, 5))
big_y = rng.integers(0, 3, size=20000)
def on_alarm(signum, frame):
    raise KeyboardInterrupt
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.5)
try:
    net.fit(big_X, big_y, optimizer=gd.Adam(lr=0.001), epochs=1000, batch_size=2)
except KeyboardInterrupt:
    print("interrupted as expected", flush=True)
signal.setitimer(signal.ITIMER_REAL, 0)
assert all(np.isfinite(p).all() for p in net.parameters())

# a signal inside a step (the engine polls between layers; the row panels of products too
# large for valgrind are covered by the sanitizer run), and predict from a signal handler
# during fit (refused); an unaligned input; a thread with a 64 KiB stack
wide = gd.Network.from_sizes([64, 256, 256, 3], output_activation="softmax",
                             loss="cross_entropy", seed=0)
wide_X = rng.normal(size=(1024, 64)).astype(np.float32)
wide_y = rng.integers(0, 3, size=1024)
signal.setitimer(signal.ITIMER_REAL, 0.5)
try:
    wide.fit(wide_X, wide_y, epochs=1000, batch_size=1024)
except KeyboardInterrupt:
    print("interrupted inside a step as expected", flush=True)
signal.setitimer(signal.ITIMER_REAL, 0)
refused = []
def predict_in_handler(signum, frame):
    try:
        wide.predict(wide_X[:2])
    except RuntimeError as exc:
        refused.append(str(exc))
signal.signal(signal.SIGALRM, predict_in_handler)
signal.setitimer(signal.ITIMER_REAL, 0.3, 0.3)
wide.fit(wide_X, wide_y, epochs=3, batch_size=1024)
signal.setitimer(signal.ITIMER_REAL, 0)
print("predict refused inside fit:", len(refused), "times", flush=True)
raw = np.zeros(wide_X[:7].nbytes + 1, np.uint8)
unaligned = raw[1:].view(np.float32).reshape(7, 64)
unaligned[...] = wide_X[:7]
np.testing.assert_allclose(wide.predict(unaligned), wide.predict(wide_X[:7]), rtol=1e-6)
threading.stack_size(64 * 1024)
small_stack = threading.Thread(target=lambda: (net.fit(X, big_y[:len(X)], epochs=2),
                                               net.predict(X), net.gradients(X, big_y[:len(X)])))
small_stack.start()
small_stack.join()
threading.stack_size(0)
try:
    type(engine).__new__(type(engine))
except TypeError:
    print("a bare __new__ is refused", flush=True)

# two networks in two threads, one network shared by two threads
nets = [net.copy(), net.copy()]
threads = [threading.Thread(target=n.fit, args=(X, big_y[:len(X)]),
                            kwargs=dict(epochs=5, batch_size=8)) for n in nets]
threads += [threading.Thread(target=lambda: [nets[0].predict(X) for _ in range(5)])]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("workload done", flush=True)
EOF

echo "== valgrind memcheck on a short training ($(command -v "$PYTHON"))" >&2
status=0
PYTHONMALLOC=malloc OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
    valgrind --tool=memcheck --error-exitcode=99 --leak-check=no \
    --undef-value-errors="$UNDEF" --num-callers=40 --show-error-list=yes \
    "${SUPPRESSIONS[@]}" ${VALGRIND_ARGS:-} \
    "$PYTHON" "$WORKLOAD" "$WORKDIR" || status=$?
if [[ $status -eq 99 ]]; then
    echo "== valgrind.sh: memcheck reported errors (see above)" >&2
elif [[ $status -ne 0 ]]; then
    echo "== valgrind.sh: the workload failed (exit status $status)" >&2
else
    echo "== valgrind.sh: clean" >&2
fi
exit $status
