# cython: language_level=3, boundscheck=False, wraparound=False
"""A user's extension over gdcore's C API, as the README shows it: tests/test_capi.py builds
it against the installed gdcore and checks results, threads and errors; bench/capi_overhead.py
times it."""
from cython.parallel cimport prange, threadid

from gdcore cimport capi


class CapiError(RuntimeError):
    """A GD_ERR_ code; ``code`` holds it."""

    def __init__(self, int code):
        super().__init__(capi.gd_error_message(code).decode())
        self.code = code


CODES = {
    "GD_OK": capi.GD_OK,
    "GD_ERR_NULL_HANDLE": capi.GD_ERR_NULL_HANDLE,
    "GD_ERR_DTYPE": capi.GD_ERR_DTYPE,
    "GD_ERR_N_ROWS": capi.GD_ERR_N_ROWS,
    "GD_ERR_NULL_POINTER": capi.GD_ERR_NULL_POINTER,
    "GD_ERR_NO_MEMORY": capi.GD_ERR_NO_MEMORY,
    "GD_ERR_BUSY": capi.GD_ERR_BUSY,
    "GD_ERR_INTERNAL": capi.GD_ERR_INTERNAL,
}


def error_message(int code):
    return capi.gd_error_message(code).decode()


ctypedef fused real:
    float
    double


cdef inline int forward(capi.gd_network* h, const real* x, Py_ssize_t n_rows,
                        real* out) noexcept nogil:
    """gd_forward_f32 for float, gd_forward_f64 for double: each operation below is written
    once for both dtypes (Cython compiles one copy per type)."""
    if real is float:
        return capi.gd_forward_f32(h, x, n_rows, out)
    else:
        return capi.gd_forward_f64(h, x, n_rows, out)


cdef int forward_all(capi.gd_network* h, real[:, ::1] x, real[:, ::1] out):
    """forward on all of x's rows without the GIL (NULL pointers for 0 rows)."""
    cdef Py_ssize_t n_rows = x.shape[0]
    cdef int rc
    with nogil:
        rc = forward(h, &x[0, 0] if n_rows else NULL, n_rows, &out[0, 0] if n_rows else NULL)
    return rc


def predict(net, x):
    """The README's example: acquire, forward without the GIL, release. x: a C-contiguous
    float32 or float64 array (n_rows, n_inputs) of the network's dtype."""
    import numpy as np
    cdef capi.gd_network* h = capi.gd_acquire(net)
    cdef int rc
    try:
        if capi.gd_itemsize(h) == 4:
            out = np.empty((x.shape[0], capi.gd_n_outputs(h)), dtype=np.float32)
            rc = forward_all[float](h, x, out)
        else:
            out = np.empty((x.shape[0], capi.gd_n_outputs(h)), dtype=np.float64)
            rc = forward_all[double](h, x, out)
    finally:
        capi.gd_release(h)
    if rc != capi.GD_OK:
        raise CapiError(rc)
    return out


def acquire_release(net):
    """gd_acquire then gd_release (the TypeError of gd_acquire propagates)."""
    cdef capi.gd_network* h = capi.gd_acquire(net)
    capi.gd_release(h)


def null_handle():
    """What every call gives for a NULL handle."""
    cdef float x = 0, out = 0
    cdef double xd = 0, outd = 0
    capi.gd_release(NULL)  # ignored
    return (capi.gd_n_inputs(NULL), capi.gd_n_outputs(NULL), capi.gd_itemsize(NULL),
            capi.gd_forward_f32(NULL, &x, 1, &out), capi.gd_forward_f64(NULL, &xd, 1, &outd))


cdef class Handle:
    """A handle kept across calls (one per network), shared by threads."""
    cdef capi.gd_network* h

    def __cinit__(self, net):
        self.h = capi.gd_acquire(net)

    def __dealloc__(self):
        capi.gd_release(self.h)

    @property
    def n_inputs(self):
        return capi.gd_n_inputs(self.h)

    @property
    def n_outputs(self):
        return capi.gd_n_outputs(self.h)

    @property
    def itemsize(self):
        return capi.gd_itemsize(self.h)

    # The methods below take float32 or float64 arrays (real, a fused type): the arrays' dtype
    # picks gd_forward_f32 or gd_forward_f64, so arrays not of the network's dtype get
    # GD_ERR_DTYPE back.

    def call(self, real[:, ::1] x, real[:, ::1] out, Py_ssize_t n_rows,
             bint null_x=False, bint null_out=False):
        """gd_forward_f32/_f64's return code as it is (x and out may be any size: a raw call)."""
        cdef const real* xp = NULL if null_x or x.shape[0] == 0 else &x[0, 0]
        cdef real* op = NULL if null_out or out.shape[0] == 0 else &out[0, 0]
        cdef int rc
        with nogil:
            rc = forward(self.h, xp, n_rows, op)
        return rc

    def call_with_gil(self, real[:, ::1] x, real[:, ::1] out):
        """gd_forward_f32/_f64 on all rows without releasing the GIL first."""
        return forward(self.h, &x[0, 0], x.shape[0], &out[0, 0])

    def rows(self, real[:, ::1] x, real[:, ::1] out, int repeats=1):
        """Row by row, one gd_forward_f32/_f64 call per row, without the GIL; repeated
        `repeats` times (for timing). Returns the first error code, or GD_OK."""
        cdef Py_ssize_t i, r, n = x.shape[0]
        cdef int rc = capi.GD_OK
        with nogil:
            for r in range(repeats):
                for i in range(n):
                    rc = forward(self.h, &x[i, 0], 1, &out[i, 0])
                    if rc != capi.GD_OK:
                        break
                if rc != capi.GD_OK:
                    break
        return rc

    def rows_prange(self, real[:, ::1] x, real[:, ::1] out, int[::1] codes, int[::1] thread,
                    int num_threads, Py_ssize_t chunk=1):
        """Rows in a prange loop of num_threads threads (OpenMP, when compiled with it), `chunk`
        rows per call: codes[i] and thread[i] get each chunk's return code and thread."""
        cdef Py_ssize_t c, start, m, n = x.shape[0]
        cdef Py_ssize_t n_chunks = (n + chunk - 1) // chunk
        with nogil:
            for c in prange(n_chunks, num_threads=num_threads, schedule="static", chunksize=1):
                start = c * chunk
                m = chunk if start + chunk <= n else n - start
                codes[c] = forward(self.h, &x[start, 0], m, &out[start, 0])
                thread[c] = threadid()
