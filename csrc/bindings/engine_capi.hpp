// What the C API (bind_capi.cpp) needs of a compiled engine (bind_engine.cpp): find the engine
// behind a Python object, and its forward pass for callers without the GIL.
#pragma once

#include <Python.h>

#include <cstddef>

namespace engine_capi {

using index_t = std::ptrdiff_t;

// A compiled engine as the C API holds it.
struct Ref {
    void* engine = nullptr;         // the Engine<T>, alive while its Python object is
    int itemsize = 0;              // 4 (float32) or 8 (float64)
    index_t n_inputs = 0;
    index_t n_outputs = 0;
};

// obj is an EngineF32 or EngineF64: fill ref and return true; else false. GIL held.
bool lookup(PyObject* obj, Ref* ref);

// Output activations of x (n x n_inputs) into out (n x n_outputs), as the engine's predict:
// a GD_ status code of gdcore/capi.h, never an exception. Needs no GIL; a caller that holds it
// has it released while a training call on the engine is waited for. n >= 0 and non-null
// pointers when n > 0 are the caller's to check.
int forward_f32(void* engine, const float* x, index_t n, float* out) noexcept;
int forward_f64(void* engine, const double* x, index_t n, double* out) noexcept;

}  // namespace engine_capi
