/* gdcore's C API: predict with a gdcore network from compiled code (C, C++, Cython), without
   the GIL and from many threads at once.

       #include "gdcore/capi.h"        (include_dirs: gdcore.get_include())

       gd_network* h = gd_acquire(net);     GIL held; NULL with a Python exception set
       int rc = gd_forward_f32(h, x, n_rows, out);   any thread, GIL held or not; 0 on success
       if (rc != GD_OK) puts(gd_error_message(rc));
       gd_release(h);

   The functions live in gdcore's compiled module (gdcore._core), which exports them as a table
   of function pointers in the capsule gdcore._core._C_API (as NumPy's C API does). gd_acquire
   imports it on its first call: no other set-up, and nothing to link against.

   This header is the one definition of the return codes and their messages; the compiled
   module includes it too, so the two cannot disagree. The table only grows (new entries at the
   end, `size` tells how far it goes); GD_CAPI_VERSION changes only if an entry changes. */
#ifndef GDCORE_CAPI_H
#define GDCORE_CAPI_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GD_CAPI_VERSION 1
#define GD_CAPI_CAPSULE "gdcore._core._C_API"

/* Return codes: 0 on success, a distinct negative number for each failure. */
#define GD_OK 0
#define GD_ERR_NULL_HANDLE (-1)   /* the handle is NULL */
#define GD_ERR_DTYPE (-2)         /* gd_forward_f32 on a float64 network, or _f64 on float32 */
#define GD_ERR_N_ROWS (-3)        /* n_rows < 0 */
#define GD_ERR_NULL_POINTER (-4)  /* x or out is NULL while n_rows > 0 */
#define GD_ERR_NO_MEMORY (-5)     /* no memory for the pass's scratch or OpenBLAS's buffer */
#define GD_ERR_BUSY (-6)          /* called by the thread that is training this network (from
                                     a callback or signal handler of fit): it would wait for
                                     itself */
#define GD_ERR_INTERNAL (-7)      /* an unexpected C++ exception (a bug: please report it) */

/* A network as the C API sees it. Only `api` is public (the inline functions below reach the
   table through it, so a handle works in any translation unit); treat the rest as opaque. */
typedef struct gd_network gd_network;

/* The function table behind the capsule. Entries are appended, never reordered. */
typedef struct gd_capi_table {
    unsigned int version;  /* GD_CAPI_VERSION of the module that made the table */
    unsigned int size;     /* sizeof(gd_capi_table) in that module: entries present */
    gd_network* (*acquire)(PyObject* net);
    void (*release)(gd_network* h);
    Py_ssize_t (*n_inputs)(const gd_network* h);
    Py_ssize_t (*n_outputs)(const gd_network* h);
    int (*itemsize)(const gd_network* h);
    int (*forward_f32)(gd_network* h, const float* x, Py_ssize_t n_rows, float* out);
    int (*forward_f64)(gd_network* h, const double* x, Py_ssize_t n_rows, double* out);
} gd_capi_table;

struct gd_network {
    const gd_capi_table* api;
};

/* The table, once imported by this translation unit (under the GIL, by gd_acquire). */
static const gd_capi_table* gd_capi_table_ = NULL;

/* Import the table: 0, or -1 with ImportError set. GIL held. */
static inline int gd_capi_import(void) {
    const gd_capi_table* table;
    if (gd_capi_table_ != NULL) return 0;
    table = (const gd_capi_table*)PyCapsule_Import(GD_CAPI_CAPSULE, 0);
    if (table == NULL) return -1;
    if (table->version != GD_CAPI_VERSION || table->size < sizeof(gd_capi_table)) {
        PyErr_Format(PyExc_ImportError,
                     "gdcore's C API is version %u with %u bytes of table; this extension was "
                     "compiled against version %d with %u bytes: rebuild it against the "
                     "installed gdcore",
                     table->version, table->size, GD_CAPI_VERSION,
                     (unsigned int)sizeof(gd_capi_table));
        return -1;
    }
    gd_capi_table_ = table;
    return 0;
}

/* A handle on `net`, a gdcore.Network or gdcore.Perceptron computing in the compiled engine
   (backend "cpp"), holding a reference to it until gd_release. GIL held. NULL with TypeError
   set for anything else (a NumPy-backend network, another object), or ImportError. */
static inline gd_network* gd_acquire(PyObject* net) {
    if (gd_capi_import() < 0) return NULL;
    return gd_capi_table_->acquire(net);
}

/* Drop the handle and its reference to the network. Takes the GIL itself (callable with or
   without it); NULL is ignored. The handle must not be in use by another thread. */
static inline void gd_release(gd_network* h) {
    if (h != NULL) h->api->release(h);
}

/* The network's number of inputs and outputs; GD_ERR_NULL_HANDLE for NULL. */
static inline Py_ssize_t gd_n_inputs(const gd_network* h) {
    return h == NULL ? GD_ERR_NULL_HANDLE : h->api->n_inputs(h);
}
static inline Py_ssize_t gd_n_outputs(const gd_network* h) {
    return h == NULL ? GD_ERR_NULL_HANDLE : h->api->n_outputs(h);
}
/* Bytes per value of the network's dtype: 4 (float32: gd_forward_f32) or 8 (float64:
   gd_forward_f64); GD_ERR_NULL_HANDLE for NULL. */
static inline int gd_itemsize(const gd_network* h) {
    return h == NULL ? GD_ERR_NULL_HANDLE : h->api->itemsize(h);
}

/* Output activations of x (n_rows x n_inputs, C order) into out (n_rows x n_outputs, C order):
   the values of net.predict(x). GD_OK or a GD_ERR_ code. Needs no GIL and runs in the calling
   thread; any number of threads may call at once on one handle. A training call on the network
   meanwhile (fit's epochs) is waited for: a pass never sees half-updated weights. */
static inline int gd_forward_f32(gd_network* h, const float* x, Py_ssize_t n_rows, float* out) {
    return h == NULL ? GD_ERR_NULL_HANDLE : h->api->forward_f32(h, x, n_rows, out);
}
static inline int gd_forward_f64(gd_network* h, const double* x, Py_ssize_t n_rows,
                                 double* out) {
    return h == NULL ? GD_ERR_NULL_HANDLE : h->api->forward_f64(h, x, n_rows, out);
}

/* What a return code means (a static string; "unknown gdcore C API error code" otherwise). */
static inline const char* gd_error_message(int code) {
    switch (code) {
        case GD_OK: return "success";
        case GD_ERR_NULL_HANDLE: return "the network handle is NULL";
        case GD_ERR_DTYPE: return "the network's dtype is not the function's "
                                  "(gd_forward_f32 needs a float32 network, gd_forward_f64 a "
                                  "float64 one)";
        case GD_ERR_N_ROWS: return "n_rows must be >= 0";
        case GD_ERR_NULL_POINTER: return "x and out must not be NULL when n_rows > 0";
        case GD_ERR_NO_MEMORY: return "not enough memory for the forward pass";
        case GD_ERR_BUSY: return "this thread is training the network (a callback or signal "
                                 "handler of fit): forward after that call returns";
        case GD_ERR_INTERNAL: return "internal error in gdcore's C API";
        default: return "unknown gdcore C API error code";
    }
}

#ifdef __cplusplus
}
#endif

#endif /* GDCORE_CAPI_H */
