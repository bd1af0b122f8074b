# cython: language_level=3
"""gdcore's C API for Cython: ``from gdcore cimport capi`` (declarations of gdcore/capi.h).

Compile with ``include_dirs=[gdcore.get_include()]``::

    from gdcore cimport capi

    cdef capi.gd_network* h = capi.gd_acquire(net)   # GIL held; TypeError unless a compiled-
    cdef int rc                                      # engine Network or Perceptron
    with nogil:
        rc = capi.gd_forward_f32(h, &x[0, 0], n_rows, &out[0, 0])  # float64: gd_forward_f64
    if rc != capi.GD_OK:
        raise RuntimeError(capi.gd_error_message(rc).decode())
    capi.gd_release(h)                               # drops the reference to net

Every function but gd_acquire is nogil; gd_forward_* may run in many threads at once.
"""

cdef extern from "gdcore/capi.h":
    enum:
        GD_CAPI_VERSION
        GD_OK
        GD_ERR_NULL_HANDLE
        GD_ERR_DTYPE
        GD_ERR_N_ROWS
        GD_ERR_NULL_POINTER
        GD_ERR_NO_MEMORY
        GD_ERR_BUSY
        GD_ERR_INTERNAL

    ctypedef struct gd_network:
        pass

    # A handle on a gdcore.Network or gdcore.Perceptron of the compiled engine, holding a
    # reference to it. GIL held; raises TypeError for anything else.
    gd_network* gd_acquire(object net) except NULL
    # Drop the handle (takes the GIL itself); NULL is ignored.
    void gd_release(gd_network* h) noexcept nogil

    Py_ssize_t gd_n_inputs(const gd_network* h) noexcept nogil
    Py_ssize_t gd_n_outputs(const gd_network* h) noexcept nogil
    # 4 for a float32 network (gd_forward_f32), 8 for float64 (gd_forward_f64).
    int gd_itemsize(const gd_network* h) noexcept nogil

    # out (n_rows, n_outputs) = the network's output activations of x (n_rows, n_inputs), both
    # C order: GD_OK, or a GD_ERR_ code (gd_error_message). Thread-safe.
    int gd_forward_f32(gd_network* h, const float* x, Py_ssize_t n_rows,
                       float* out) noexcept nogil
    int gd_forward_f64(gd_network* h, const double* x, Py_ssize_t n_rows,
                       double* out) noexcept nogil

    const char* gd_error_message(int code) noexcept nogil
