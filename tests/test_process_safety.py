"""Probes that used to kill the interpreter: each runs in a child process, so a crash
fails the test instead of the test run. The child prints one line per step it finished; a
crash is reported with the last step that completed."""
import os
import subprocess
import sys
import textwrap

import pytest

from gdcore import _backend


def run_child(code: str, timeout: float = 120.0) -> list:
    """Run ``code`` in a fresh interpreter; the lines it printed. Fails on a crash or error."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0:
        what = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                else f"exit status {proc.returncode}")
        last = lines[-1] if lines else "(nothing)"
        pytest.fail(f"child {what}; last step done: {last}\nstderr:\n{proc.stderr[-3000:]}")
    return lines


needs_core = pytest.mark.skipif(not _backend._core_engines_available(),
                                reason="the compiled core is not built in this installation")


@pytest.mark.parametrize("backend", ["numpy", "cpp"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_thread_stack(backend, dtype):
    """Threads with a 64 KiB stack (threading.stack_size's small end) predict, fit, and compute
    the loss and gradients of small and wide networks: the core keeps its scratch on the heap."""
    if backend == "cpp" and not _backend._core_engines_available():
        pytest.skip("the compiled core is not built in this installation")
    lines = run_child(f"""
        import threading
        import numpy as np
        import gdcore as gd
        gd.set_backend({backend!r})
        rng = np.random.default_rng(0)
        threading.stack_size(64 * 1024)
        for width in (8, 100, 600):
            for loss, out in (("mse", "identity"), ("cross_entropy", "softmax"),
                              ("bce", "sigmoid")):
                net = gd.Network.from_sizes([width, width, 3], output_activation=out,
                                            loss=loss, dtype={dtype!r}, seed=0)
                X = rng.normal(size=(64, width)).astype({dtype!r})
                Y = rng.integers(0, 3, size=64) if loss == "cross_entropy" else \\
                    rng.uniform(size=(64, 3)).astype({dtype!r})
                calls = {{
                    "predict": lambda: (net.predict(X), net.predict(X[:1]), net.predict(X[0])),
                    "fit": lambda: net.fit(X, Y, epochs=2, batch_size=16),
                    "loss": lambda: net.loss(X, Y),
                    "gradients": lambda: net.gradients(X, Y),
                }}
                for name, call in calls.items():
                    errors = []
                    def work():
                        try:
                            call()
                        except BaseException as exc:
                            errors.append(exc)
                    thread = threading.Thread(target=work)
                    thread.start()
                    thread.join()
                    assert not errors, errors
                    print(width, loss, name, "ok", flush=True)
    """)
    assert len(lines) == 3 * 3 * 4


@needs_core
def test_core_classes_refuse_construction_without_their_invariants():
    """Every class of gdcore._core: ``cls.__new__(cls)`` without the constructor's arguments,
    copying, pickling and subclassing raise TypeError; nothing crashes."""
    lines = run_child("""
        import copy, pickle
        import numpy as np
        import gdcore._core as core
        classes = [c for c in vars(core).values()
                   if isinstance(c, type) and c.__module__ == core.__name__]
        assert {c.__name__ for c in classes} >= {"EngineF32", "EngineF64"}, classes
        for cls in classes:
            try:
                obj = cls.__new__(cls)
            except TypeError:
                print(cls.__name__, "__new__ refused", flush=True)
            else:  # constructible without arguments: then every member must be safe to use
                for name in dir(obj):
                    try:
                        member = getattr(obj, name)
                        if callable(member) and name in ("predict", "forward", "__repr__"):
                            member()
                    except Exception:
                        pass
                print(cls.__name__, "usable without arguments", flush=True)
            for other in classes:  # another class's __new__ does not build this one
                if other is not cls:
                    try:
                        cls.__new__(other, [np.ones((2, 1))], [np.zeros(1)], [0], 0)
                        raise AssertionError(f"{cls.__name__}.__new__ built a {other.__name__}")
                    except TypeError:
                        pass
            try:
                type("Sub", (cls,), {})
                raise AssertionError(f"{cls.__name__} can be subclassed")
            except TypeError:
                print(cls.__name__, "subclassing refused", flush=True)
        dtypes = {"EngineF32": np.float32, "EngineF64": np.float64}
        for name, dt in dtypes.items():
            cls = getattr(core, name)
            engine = cls([np.ones((2, 3), dt)], [np.zeros(3, dt)], [0], 0)
            direct = cls.__new__(cls, [np.ones((2, 3), dt)], [np.zeros(3, dt)], [0], 0)
            assert repr(engine) == repr(direct) == f"{name}(2-3, loss=mse)", repr(direct)
            np.testing.assert_array_equal(direct.predict(np.ones(2, dt)), [[2, 2, 2]])
            engine.__init__([np.ones((5, 1), dt)], [np.zeros(1, dt)], [0], 0)  # ignored
            assert engine.n_inputs == 2
            for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
                try:
                    attempt(engine)
                    raise AssertionError(f"{attempt.__name__} of {name} did not raise")
                except TypeError:
                    pass
            print(name, "built by __new__ and __init__ alike; copies refused", flush=True)
    """)
    assert sum("__new__ refused" in line for line in lines) >= 2
    assert sum("copies refused" in line for line in lines) == 2


@needs_core
def test_running_out_of_address_space_raises_memory_error():
    """With the address space nearly exhausted (RLIMIT_AS), predict, loss, gradients and fit
    (also from four threads at once) either work or raise MemoryError: OpenBLAS must never
    end the process ("Memory allocation still failed after 10 retries"). The core fills
    OpenBLAS's buffer pool at import, and checks for room after growing a call's workspace
    and before more calls run at once than ever. (The compiled engine only: the NumPy engine
    runs on NumPy's own OpenBLAS, whose mallocs gdcore cannot see; README, Reliability.)"""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("an address-space limit starves AddressSanitizer's own shadow memory")
    backend = "cpp"
    lines = run_child(f"""
        import resource, threading
        import numpy as np
        import gdcore as gd
        gd.set_backend({backend!r})
        net = gd.Network.from_sizes([512, 1024, 10], seed=0)
        X = np.ones((4096, 512), np.float32)
        Y = np.ones((4096, 10), np.float32)
        outcomes = []
        def attempt(name, call):
            try:
                call()
                outcomes.append(name + " ok")
            except MemoryError as exc:
                outcomes.append(name + " MemoryError: " + str(exc)[:60])
        calls = {{"predict": lambda: net.predict(X), "loss": lambda: net.loss(X, Y),
                  "gradients": lambda: net.gradients(X, Y),
                  "fit": lambda: net.fit(X, Y, epochs=1, batch_size=4096)}}
        go = threading.Event()
        def predict_when_told():
            go.wait()
            attempt("thread predict", calls["predict"])
        threads = [threading.Thread(target=predict_when_told) for _ in range(4)]
        for t in threads:  # started first: a thread's stack needs address space too
            t.start()
        size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + (768 << 20), resource.RLIM_INFINITY))
        hog = []
        try:
            while True:
                hog.append(np.empty(16 << 20, np.uint8))  # address space, not touched
        except MemoryError:
            pass
        del hog[-2:]  # leave ~32 MiB
        print("filled", len(hog) * 16, "MiB", flush=True)
        for name, call in calls.items():
            attempt(name, call)
        go.set()
        for t in threads:
            t.join()
        for line in outcomes:
            print(line, flush=True)
        print("done", flush=True)
    """)
    assert lines[-1] == "done", lines
    assert len(lines) == 1 + 8 + 1, lines
