// EngineF32 / EngineF64: the engine contract of docs/design.md over gd::Network. Glue only:
// the memory-safety checks of checks.hpp with the GIL held (user-facing checks are the Python
// layer's), compute under gil_scoped_release, algorithms in csrc/gd/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <vector>

#include "../gd/blas.hpp"
#include "../gd/finite.hpp"
#include "../gd/lbfgs.hpp"
#include "../gd/losses.hpp"
#include "../gd/network.hpp"
#include "../gd/objective.hpp"
#include "../gd/optimizers.hpp"
#include "../gd/train.hpp"
#include "checks.hpp"
#include "engine_capi.hpp"
#include "gdcore/capi.h"

namespace py = pybind11;
using checks::ErrorCode;
using gd::index_t;

namespace {

// One call at a time per engine: a second one meanwhile (another thread, or re-entry from a
// Python signal handler run during train_epoch) raises RuntimeError instead of sharing the
// workspace.
class BusyGuard {
public:
    explicit BusyGuard(std::atomic<bool>& flag) : flag_(flag) {
        if (flag_.exchange(true, std::memory_order_acquire))
            throw std::runtime_error(
                "this engine is already running a call (from another thread, or re-entrantly); "
                "an engine runs one call at a time");
    }
    ~BusyGuard() { flag_.store(false, std::memory_order_release); }
    BusyGuard(const BusyGuard&) = delete;
    BusyGuard& operator=(const BusyGuard&) = delete;

private:
    std::atomic<bool>& flag_;
};

// How a call holds an engine's parameters: not at all, shared (predict: many at once) or
// exclusively (the calls that use the workspace or change the parameters).
enum class Hold { none, shared, exclusive };

// The hold of one call on params_mutex_, recorded for its thread: a Python signal handler run
// in the middle of a call (poll_python_signals) is on the same thread, and a predict it makes
// on that engine must be refused, not wait for a lock its own thread holds.
class ParamsHold {
public:
    ParamsHold(std::shared_mutex& mutex, const void* engine, Hold mode)
        : mutex_(mutex), engine_(engine), mode_(mode) {}
    ParamsHold(const ParamsHold&) = delete;
    ParamsHold& operator=(const ParamsHold&) = delete;
    ~ParamsHold() {
        if (!taken_) return;
        if (mode_ == Hold::exclusive) mutex_.unlock();
        else mutex_.unlock_shared();
        held().pop_back();
    }

    // Take the lock, waiting for it (call with the GIL released).
    void take() {
        held().push_back({engine_, mode_});
        try {
            if (mode_ == Hold::exclusive) mutex_.lock();
            else mutex_.lock_shared();
        } catch (...) {
            held().pop_back();
            throw;
        }
        taken_ = true;
    }
    // Take it only if it is free now: false if not taken.
    bool try_take() {
        held().push_back({engine_, mode_});
        taken_ = mode_ == Hold::exclusive ? mutex_.try_lock() : mutex_.try_lock_shared();
        if (!taken_) held().pop_back();
        return taken_;
    }

    // The strongest hold this thread has on `engine`.
    static Hold of_this_thread(const void* engine) noexcept {
        Hold mode = Hold::none;
        for (const Entry& e : held())
            if (e.engine == engine && e.mode > mode) mode = e.mode;
        return mode;
    }

private:
    struct Entry {
        const void* engine;
        Hold mode;
    };
    static std::vector<Entry>& held() {
        thread_local std::vector<Entry> entries;
        return entries;
    }

    std::shared_mutex& mutex_;
    const void* engine_;
    Hold mode_;
    bool taken_ = false;
};

// Engine calls that may run OpenBLAS products now, and the most there have ever been at once:
// OpenBLAS's pool keeps a buffer for each (blas.hpp, warm_up). A call that makes more run at
// once than ever first checks that one more buffer fits, so that the user gets MemoryError
// instead of OpenBLAS ending the process. Taken with the GIL held.
class BlasCall {
public:
    BlasCall() {
        if (!enter()) {
            PyErr_SetString(PyExc_MemoryError,
                            "not enough memory left for OpenBLAS's buffer (64 MiB of "
                            "address space) for another call running at the same time");
            throw py::error_already_set();
        }
    }
    ~BlasCall() { leave(); }
    BlasCall(const BlasCall&) = delete;
    BlasCall& operator=(const BlasCall&) = delete;

    // Count one more call (true), or false when there is no room for its buffer (not counted).
    // Without Python: the C API's forward takes it without the GIL.
    static bool enter() noexcept {
        const int now = active().fetch_add(1) + 1;
        int high = most().load();
        while (now > high) {
            if (!gd::blas::buffer_room()) {
                active().fetch_sub(1);
                return false;
            }
            if (most().compare_exchange_weak(high, now)) break;
        }
        return true;
    }
    static void leave() noexcept { active().fetch_sub(1); }

private:
    static std::atomic<int>& active() {
        static std::atomic<int> count{0};
        return count;
    }
    static std::atomic<int>& most() {
        static std::atomic<int> count{1};  // the warm-up's call
        return count;
    }
    gd::blas::ThreadRegion region_;  // OpenBLAS single-threaded for the call (blas.hpp)
};

// MemoryError for a workspace (reserve) that could not be allocated, with its size.
[[noreturn]] void raise_workspace_error(double bytes, index_t rows) {
    char mib[32];
    std::snprintf(mib, sizeof mib, "%.1f", bytes / 1048576.0);
    const std::string message = "not enough memory for the workspace of a batch of " +
                                std::to_string(rows) + " rows (" + mib +
                                " MiB) and OpenBLAS's buffers; use a smaller batch_size or "
                                "fewer rows per call";
    PyErr_SetString(PyExc_MemoryError, message.c_str());
    throw py::error_already_set();
}

// The interrupt hook of long calls: take the GIL briefly and run Python's signal handlers. A
// handler's exception (KeyboardInterrupt on Ctrl-C) stays set; the call stops at the next
// whole step (training) or at once (the others) and raises it.
bool poll_python_signals(void*) {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
}

gd::Interrupt python_signals() {
    gd::Interrupt interrupt;
    interrupt.poll = &poll_python_signals;
    return interrupt;
}

std::string str(index_t v) { return std::to_string(v); }
// A float as Python prints it (the NumPy engine's messages use repr).
std::string float_str(double v) { return py::str(py::float_(v)).cast<std::string>(); }

// numpy.ndarray itself (subclasses such as masked arrays go through the Python layer) and the
// type numbers of float32 and float64, set when the module is imported (bind_engine).
PyTypeObject* ndarray_type = nullptr;
int type_num_float32 = -1, type_num_float64 = -1;
// The byte-order character of a non-native dtype ('=' is native).
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char foreign_byte_order = '<';
#else
constexpr char foreign_byte_order = '>';
#endif

// X as predict computes it without any conversion: exactly a numpy.ndarray of dtype T (native
// byte order), C-contiguous and aligned, of shape (n_inputs,) (one sample) or (n, n_inputs)
// with n >= 1, every value finite. Else null: the caller validates and converts X first.
// (The type number is compared rather than asking NumPy whether the dtypes are equivalent:
// this runs on every predict call.)
template <class T>
const T* ready_input(const py::handle& X, index_t n_inputs, index_t* n_rows) {
    if (Py_TYPE(X.ptr()) != ndarray_type) return nullptr;
    const auto a = py::reinterpret_borrow<py::array>(X);
    const py::dtype dtype = a.dtype();
    const int want = std::is_same_v<T, float> ? type_num_float32 : type_num_float64;
    if (dtype.num() != want || dtype.byteorder() == foreign_byte_order) return nullptr;
    if (!(a.flags() & py::array::c_style)) return nullptr;
    index_t n;
    if (a.ndim() == 1 && a.shape(0) == n_inputs) n = 1;
    else if (a.ndim() == 2 && a.shape(1) == n_inputs && a.shape(0) >= 1) n = a.shape(0);
    else return nullptr;
    if (!checks::aligned<T>(a)) return nullptr;
    const T* x = static_cast<const T*>(a.data());
    if (!gd::all_finite(x, n * n_inputs)) return nullptr;
    *n_rows = n;
    return x;
}

// A new C-contiguous (rows, cols) array of T, uninitialised: NumPy's constructor called
// directly (py::array_t's builds shape and stride vectors on the heap first: a tenth of a
// one-row predict's cost). Throws error_already_set (MemoryError) when NumPy cannot.
template <class T>
py::array new_array(index_t rows, index_t cols) {
    const auto& api = py::detail::npy_api::get();
    Py_intptr_t dims[2] = {Py_intptr_t(rows), Py_intptr_t(cols)};
    PyObject* descr = api.PyArray_DescrFromType_(std::is_same_v<T, float> ? type_num_float32
                                                                           : type_num_float64);
    if (descr == nullptr) throw py::error_already_set();
    // (NewFromDescr steals the descriptor's reference, even when it fails.)
    PyObject* out = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, 2, dims, nullptr,
                                              nullptr, 0, nullptr);
    if (out == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::array>(out);
}

// The checked arrays of a call, kept alive while the GIL is released, and their pointers.
template <class T>
struct CallData {
    std::vector<py::array> keep;
    const T* x = nullptr;
    index_t n = 0;
    gd::Targets<T> y;
    const T* sample_weight = nullptr;
};

template <class T>
class Engine {
public:
    Engine(const py::object& weights, const py::object& biases, const py::object& activations,
           const py::object& loss) {
        const auto w_items = checks::items(weights, "weights");
        const auto b_items = checks::items(biases, "biases");
        const auto a_items = checks::items(activations, "activations");
        if (w_items.empty())
            checks::fail(ErrorCode::shape, "weights must hold at least one array");
        if (b_items.size() != w_items.size() || a_items.size() != w_items.size())
            checks::fail(ErrorCode::shape,
                         "weights, biases and activations must have the same length, got " +
                             std::to_string(w_items.size()) + ", " +
                             std::to_string(b_items.size()) + " and " +
                             std::to_string(a_items.size()));
        const int loss_code = checks::code_in(loss, "loss", "a loss code", gd::n_loss_codes);

        const std::size_t n_layers = w_items.size();
        std::vector<gd::DenseLayer<T>> layers;
        for (std::size_t i = 0; i < n_layers; ++i) {
            const std::string wname = checks::item("weights", i);
            py::array w = checks::array_of<T>(w_items[i], wname, 2, "(n_inputs, n_outputs)", true);
            const index_t n_in = w.shape(0), n_out = w.shape(1);
            if (n_in < 1 || n_out < 1)
                checks::fail(ErrorCode::shape, wname + " must have at least one row and one "
                                               "column, got shape " + checks::shape_of(w));
            if (i > 0 && n_in != layers.back().n_outputs)
                checks::fail(ErrorCode::shape,
                             wname + " must have " + str(layers.back().n_outputs) +
                                 " rows, the outputs of weights[" + std::to_string(i - 1) +
                                 "], got shape " + checks::shape_of(w));
            const std::string bname = checks::item("biases", i);
            const std::string bshape = "(" + str(n_out) + ",)";
            py::array b = checks::array_of<T>(b_items[i], bname, 1, bshape, true);
            checks::dim(b, 0, n_out, bname, bshape);
            const int code = checks::code_in(a_items[i], checks::item("activations", i),
                                             "an activation code", gd::n_activation_codes);
            layers.push_back({static_cast<T*>(w.mutable_data()), static_cast<T*>(b.mutable_data()),
                              n_in, n_out, gd::Activation(code)});
            weights_.push_back(std::move(w));
            biases_.push_back(std::move(b));
            activations_.push_back(code);
        }
        // The network checks its structure (softmax only on the output layer, the output
        // activation the loss needs).
        try {
            net_ = std::make_unique<gd::Network<T>>(std::move(layers), gd::Loss(loss_code));
        } catch (const std::invalid_argument& e) {
            checks::fail(ErrorCode::structure, e.what());
        }
        for (index_t i = 0; i < net_->n_layers(); ++i)
            multiply_adds_ += net_->layer(i).n_inputs * net_->layer(i).n_outputs;
    }

    index_t n_inputs() const { return net_->n_inputs(); }
    index_t n_outputs() const { return net_->n_outputs(); }
    index_t n_layers() const { return net_->n_layers(); }
    index_t n_outputs_of(index_t layer) const { return net_->layer(layer).n_outputs; }
    int loss_code() const { return int(net_->loss()); }
    py::list activations() const {
        py::list out;
        for (int code : activations_) out.append(code);
        return out;
    }
    py::list weights() const { return to_list(weights_); }
    py::list biases() const { return to_list(biases_); }

    // The parameters held exclusively by Python code that writes the parameter arrays in place
    // (fit's rollback and start-loss measurement, find_lr's restore, early stopping's best
    // weights; Network._writing_parameters): the Python layer's lock keeps Python callers out
    // meanwhile, this keeps out the C API's forwards, which run without the GIL and hold the
    // parameters shared. No call on this engine may be made before unlock_parameters, which
    // the same thread calls.
    void lock_parameters() {
        if (ParamsHold::of_this_thread(this) != Hold::none)
            throw std::runtime_error("_lock_parameters() in the middle of a call on this engine "
                                     "on the same thread");
        auto hold = std::make_unique<ParamsHold>(params_mutex_, this, Hold::exclusive);
        if (!hold->try_take()) {
            py::gil_scoped_release nogil;  // forwards may be running: wait without the GIL
            hold->take();
        }
        python_hold_ = std::move(hold);  // (exclusive: no other thread is here)
    }
    void unlock_parameters() {
        if (!python_hold_ || ParamsHold::of_this_thread(this) != Hold::exclusive)
            throw std::runtime_error("_unlock_parameters() without _lock_parameters() on this "
                                     "thread");
        python_hold_.reset();
    }

    py::array forward(const py::object& X) {
        BusyGuard busy(busy_);
        const py::array x = check_x(X, 0);
        const index_t n = x.shape(0);
        py::array_t<T> out({n, n_outputs()});
        if (n == 0) return out;
        const T* xp = static_cast<const T*>(x.data());
        T* op = out.mutable_data();
        gd::StopCheck stop(python_signals());
        BlasCall blas;
        bool no_memory = false;
        {
            py::gil_scoped_release nogil;
            ParamsHold hold(params_mutex_, this, Hold::exclusive);
            hold.take();
            if (reserved(n)) net_->forward(xp, n, op, true, &stop);
            else no_memory = true;
        }
        if (no_memory) raise_workspace_error(net_->workspace_bytes(n), n);
        if (stop.stopped()) throw py::error_already_set();  // the signal handler's exception
        return out;
    }

    // Output activations of X, for any number of threads at once (no workspace is shared; a
    // training call on this engine meanwhile is waited for), when X is ready as it is (see
    // ready_input); None otherwise, without an error: the Python layer then validates and
    // converts X (gdcore/_validation.py, which raises the user-facing errors) and calls again.
    py::object predict(const py::handle& X) {
        index_t n = 0;
        const T* x = ready_input<T>(X, n_inputs(), &n);
        if (x == nullptr) return py::none();
        py::array out = new_array<T>(n, n_outputs());
        T* op = static_cast<T*>(out.mutable_data());
        // Small inputs keep the GIL and compute in this thread's buffer (no allocation per
        // call; on the heap, not the stack, which may be 64 KiB), larger ones release it.
        const index_t scratch_size = net_->predict_scratch(n);
        const double multiply_adds = double(n) * double(multiply_adds_);
        const Hold own = ParamsHold::of_this_thread(this);
        if (own == Hold::exclusive)
            throw std::runtime_error(
                "predict cannot run in the middle of a call that trains or evaluates this "
                "network (a signal handler or callback of fit, loss or gradients, on the same "
                "thread); call it after that call returns");
        if (multiply_adds <= small_predict_multiply_adds && scratch_size <= small_predict_elements) {
            // Short enough to keep the GIL (which also orders concurrent predictions); a
            // training call holding the parameters meanwhile is waited for without it.
            T* scratch = small_predict_scratch();
            ParamsHold hold(params_mutex_, this, Hold::shared);
            if (own == Hold::none && !hold.try_take()) {  // (shared already: a nested predict)
                py::gil_scoped_release nogil;
                hold.take();
            }
            net_->predict(x, n, op, scratch);
        } else {
            // Not zero-filled (for a large X that alone would take longer than a poll).
            std::unique_ptr<T[]> scratch(new (std::nothrow) T[std::size_t(scratch_size)]);
            if (!scratch)
                raise_workspace_error(double(scratch_size) * double(sizeof(T)), n);
            gd::StopCheck stop(python_signals());
            BlasCall blas;
            {
                py::gil_scoped_release nogil;
                ParamsHold hold(params_mutex_, this, Hold::shared);
                if (own == Hold::none) hold.take();
                net_->predict(x, n, op, scratch.get(), &stop);
            }
            if (stop.stopped()) throw py::error_already_set();
        }
        return out;
    }

    // predict for the C API (engine_capi.hpp): x (n x n_inputs) -> out (n x n_outputs), a
    // GD_ code, nothing thrown. Needs no GIL: the hidden layers run in this thread's scratch,
    // the parameters are held shared (a training call is waited for, never torn).
    int capi_forward(const T* x, index_t n, T* out) noexcept {
        try {
            const Hold own = ParamsHold::of_this_thread(this);
            if (own == Hold::exclusive) return GD_ERR_BUSY;  // waiting would wait for itself
            if (n == 0) return GD_OK;
            // (A row count no buffer can have: the sizes below would overflow.)
            const index_t widest = std::max({n_inputs(), n_outputs(), net_->predict_scratch(1)});
            if (double(n) * double(widest) > 0x1p60) return GD_ERR_NO_MEMORY;
            T* scratch = capi_scratch(net_->predict_scratch(n));
            if (scratch == nullptr) return GD_ERR_NO_MEMORY;
            // Counted as an OpenBLAS call like predict's large passes (small ones run in the
            // own kernels).
            const bool large = double(n) * double(multiply_adds_) > small_predict_multiply_adds;
            if (large && !BlasCall::enter()) return GD_ERR_NO_MEMORY;
            struct Leave {
                bool counted;
                ~Leave() { if (counted) BlasCall::leave(); }
            } leave{large};
            ParamsHold hold(params_mutex_, this, Hold::shared);
            if (own == Hold::none && !hold.try_take()) take_without_gil(hold);
            net_->predict(x, n, out, scratch);
            return GD_OK;
        } catch (const std::bad_alloc&) {
            return GD_ERR_NO_MEMORY;
        } catch (...) {  // std::system_error from a lock: nothing may cross the C boundary
            return GD_ERR_INTERNAL;
        }
    }

    double loss(const py::object& X, const py::object& Y, const py::object& sample_weight,
                double l2, double label_smoothing, const py::object& dropout,
                std::uint64_t dropout_seed, std::int64_t dropout_step) {
        BusyGuard busy(busy_);
        CallData<T> d = check_data(X, Y, sample_weight);
        const gd::Regularisers reg =
            regularisers(l2, label_smoothing, dropout, dropout_seed, d.keep);
        T value = T(0);
        gd::StopCheck stop(python_signals());
        BlasCall blas;
        bool no_memory = false;
        {
            py::gil_scoped_release nogil;
            ParamsHold hold(params_mutex_, this, Hold::exclusive);
            hold.take();
            if (!reserved(d.n, nullptr, false, reg.dropout != nullptr)) no_memory = true;
            else gd::objective_value(*net_, d.x, d.n, d.y, d.sample_weight, reg, dropout_step,
                                     &value, &stop);
        }
        if (no_memory) raise_workspace_error(net_->workspace_bytes(d.n), d.n);
        if (stop.stopped()) throw py::error_already_set();
        return double(value);
    }

    double gradients(const py::object& X, const py::object& Y, const py::object& sample_weight,
                     const py::object& dW, const py::object& db, double l2,
                     double label_smoothing, const py::object& dropout,
                     std::uint64_t dropout_seed, std::int64_t dropout_step) {
        BusyGuard busy(busy_);
        CallData<T> d = check_data(X, Y, sample_weight);
        std::vector<T*> dw_ptr, db_ptr;
        check_like_parameters(dW, "dW", true, d.keep, dw_ptr);
        check_like_parameters(db, "db", false, d.keep, db_ptr);
        const gd::Regularisers reg =
            regularisers(l2, label_smoothing, dropout, dropout_seed, d.keep);
        T value = T(0);
        gd::StopCheck stop(python_signals());
        BlasCall blas;
        bool no_memory = false;
        {
            py::gil_scoped_release nogil;
            ParamsHold hold(params_mutex_, this, Hold::exclusive);
            hold.take();
            if (!reserved(d.n, nullptr, false, reg.dropout != nullptr)) no_memory = true;
            else gd::objective_gradient(*net_, d.x, d.n, d.y, d.sample_weight, reg, dropout_step,
                                        dw_ptr.data(), db_ptr.data(), &value, &stop);
        }
        if (no_memory) raise_workspace_error(net_->workspace_bytes(d.n), d.n);
        if (stop.stopped()) throw py::error_already_set();
        return double(value);
    }

    double train_epoch(const py::object& X, const py::object& Y, const py::object& sample_weight,
                       const py::object& order, const py::object& batch_size,
                       const py::object& optimizer, const py::object& hyper,
                       const py::object& state, const py::object& step, double l2,
                       double label_smoothing, const py::object& dropout,
                       std::uint64_t dropout_seed) {
        BusyGuard busy(busy_);
        EpochCall p;
        check_epoch_data(X, Y, sample_weight, order, p);
        check_epoch(p, batch_size, optimizer, hyper, state, step, l2, label_smoothing, dropout,
                    dropout_seed);
        gd::EpochResult result;
        BlasCall blas;
        bool no_memory = false;
        {
            py::gil_scoped_release nogil;
            ParamsHold hold(params_mutex_, this, Hold::exclusive);  // predict waits
            hold.take();
            // The workspace first (train_epoch's own growth is then a no-op).
            if (reserved_for(p))
                result = gd::train_epoch(*net_, p.data, p.batch_size, p.config, p.reg,
                                         p.state.data(), p.step, python_signals());
            else
                no_memory = true;
        }
        if (no_memory) raise_workspace_error(net_->workspace_bytes(p.rows), p.rows);
        if (result.interrupted) throw py::error_already_set();  // the signal handler's exception
        return result.loss;
    }

    // train_epoch on several engines of this class in one call (gd::train_epoch_many): each
    // job is the tuple (engine, X, Y, sample_weight, order, batch_size, optimizer, hyper,
    // state, step, l2, label_smoothing, dropout, dropout_seed) of that engine's train_epoch,
    // checked as train_epoch checks it; the engines must be distinct. Returns the epoch losses.
    static py::list train_epoch_many(const py::object& jobs, const py::object& n_threads) {
        const auto items = checks::items(jobs, "jobs");
        const long long threads = checks::integer(n_threads, "n_threads");
        if (threads < 1)
            checks::fail(ErrorCode::index, "n_threads must be at least 1, got " +
                                               std::to_string(threads));
        std::vector<Engine*> engines;
        std::vector<std::unique_ptr<BusyGuard>> busy;  // (a repeated engine: RuntimeError)
        std::vector<EpochCall> calls;
        calls.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            const std::string name = checks::item("jobs", i);
            if (!py::isinstance<py::tuple>(items[i]) || py::len(items[i]) != 14)
                checks::fail(ErrorCode::type,
                             name + " must be a tuple (engine, X, Y, sample_weight, order, "
                                    "batch_size, optimizer, hyper, state, step, l2, "
                                    "label_smoothing, dropout, dropout_seed)");
            const auto job = py::reinterpret_borrow<py::tuple>(items[i]);
            if (!py::isinstance<Engine>(job[0])) {
                const std::string cls = py::str(py::type::of<Engine>()).cast<std::string>();
                checks::fail(ErrorCode::type, name + "[0] must be a " + cls + ", got " +
                                                  checks::type_name(job[0]));
            }
            Engine* e = job[0].cast<Engine*>();
            busy.push_back(std::make_unique<BusyGuard>(e->busy_));
            EpochCall p;
            // A sweep's jobs share their data: checked once for a run of jobs on the same
            // arrays (X, Y, sample_weight, order) and engines that check them alike.
            const bool same_data = i > 0 && engines.back()->same_data_checks(*e) &&
                                   [&] {
                                       const auto before =
                                           py::reinterpret_borrow<py::tuple>(items[i - 1]);
                                       for (int a = 1; a <= 4; ++a)
                                           if (!job[a].is(before[a])) return false;
                                       return true;
                                   }();
            if (same_data) {
                const EpochCall& before = calls.back();
                p.d = before.d;
                p.d.keep.resize(before.data_kept);  // (the data's arrays only)
                p.data = before.data;
                p.data_kept = before.data_kept;
            } else {
                e->check_epoch_data(job[1], job[2], job[3], job[4], p);
            }
            e->check_epoch(p, job[5], job[6], job[7], job[8], job[9], job[10].cast<double>(),
                           job[11].cast<double>(), job[12], job[13].cast<std::uint64_t>());
            engines.push_back(e);
            calls.push_back(std::move(p));
        }
        const std::size_t n_calls = calls.size();
        std::vector<gd::EpochJob<T>> epochs(n_calls);
        for (std::size_t i = 0; i < n_calls; ++i) {
            EpochCall& p = calls[i];
            gd::EpochJob<T>& job = epochs[i];
            job.net = engines[i]->net_.get();
            job.data = p.data;
            job.batch_size = p.batch_size;
            job.config = p.config;
            job.reg = p.reg;
            job.state = p.state.data();
            job.step = p.step;
        }
        // As many BLAS callers as threads that may run products at once.
        const int n_workers = int(std::min<long long>(threads, std::max<std::size_t>(1, n_calls)));
        std::vector<std::unique_ptr<BlasCall>> blas;
        for (int t = 0; t < n_workers; ++t) blas.push_back(std::make_unique<BlasCall>());
        std::size_t no_memory = n_calls;  // the job whose workspace could not be grown
        {
            py::gil_scoped_release nogil;
            std::vector<std::unique_ptr<ParamsHold>> holds;  // predict on any of them waits
            for (Engine* e : engines) {
                holds.push_back(std::make_unique<ParamsHold>(e->params_mutex_, e, Hold::exclusive));
                holds.back()->take();
            }
            for (std::size_t i = 0; i < n_calls && no_memory == n_calls; ++i)
                if (!engines[i]->reserved_for(calls[i])) no_memory = i;
            if (no_memory == n_calls) gd::train_epoch_many(epochs, n_workers, python_signals());
            while (!holds.empty()) holds.pop_back();  // (released in the reverse order)
        }
        if (no_memory < n_calls)
            raise_workspace_error(engines[no_memory]->net_->workspace_bytes(calls[no_memory].rows),
                                  calls[no_memory].rows);
        py::list losses;
        bool interrupted = false;
        for (const gd::EpochJob<T>& job : epochs) {
            interrupted |= job.result.interrupted;
            losses.append(job.result.loss);
        }
        if (interrupted) throw py::error_already_set();  // the signal handler's exception
        return losses;
    }

    // One L-BFGS step on the full batch (csrc/gd/lbfgs.hpp): the parameters, the state, the
    // run vector and step[0] change in place. Returns the objective where the step started.
    double lbfgs_step(const py::object& X, const py::object& Y, const py::object& sample_weight,
                      const py::object& config, const py::object& state, const py::object& run,
                      const py::object& step, double l2, double label_smoothing) {
        BusyGuard busy(busy_);
        CallData<T> d = check_data(X, Y, sample_weight);
        const gd::Regularisers reg = regularisers(l2, label_smoothing, py::none(), 0, d.keep);

        const std::string config_shape = "(" + std::to_string(gd::n_lbfgs_config) + ",)";
        const py::array c = checks::array_of<double>(config, "config", 1, config_shape);
        checks::dim(c, 0, gd::n_lbfgs_config, "config", config_shape);
        const double* cp = static_cast<const double*>(c.data());
        // history_size sizes the state: a whole number in [1, max_history_size].
        const double history = cp[gd::lbfgs_index::history_size];
        if (!(history >= 1.0 && history <= double(max_history_size) &&
              history == std::floor(history)))
            checks::fail(ErrorCode::index,
                         "config[" + std::to_string(gd::lbfgs_index::history_size) +
                             "] (history_size) must be a whole number in [1, " +
                             std::to_string(max_history_size) + "], got " + float_str(history));
        const auto lconfig = gd::LbfgsConfig::from_config(cp);
        d.keep.push_back(c);

        std::vector<T*> state_ptr;
        check_state(state, lconfig.n_slots(), [&lconfig] {
                        return "lbfgs with history_size " + std::to_string(lconfig.history_size);
                    }, d.keep, state_ptr);

        const std::string run_shape = "(" + std::to_string(gd::n_lbfgs_run) + ",)";
        py::array r = checks::array_of<double>(run, "run", 1, run_shape, true);
        checks::dim(r, 0, gd::n_lbfgs_run, "run", run_shape);
        auto* rp = static_cast<double*>(r.mutable_data());
        // The history's ring position indexes the state.
        const double n_pairs = rp[gd::lbfgs_run::n_pairs], newest = rp[gd::lbfgs_run::newest];
        if (!(n_pairs >= 0.0 && n_pairs <= history && n_pairs == std::floor(n_pairs) &&
              newest >= 0.0 && newest < history && newest == std::floor(newest)))
            checks::fail(ErrorCode::index,
                         "run must hold whole numbers n_pairs in [0, history_size] and newest in "
                         "[0, history_size), got " + float_str(n_pairs) + " and " +
                             float_str(newest));
        d.keep.push_back(r);

        py::array st = checks::array_of<std::int64_t>(step, "step", 1, "(1,)", true);
        checks::dim(st, 0, 1, "step", "(1,)");
        auto* stp = static_cast<std::int64_t*>(st.mutable_data());
        d.keep.push_back(st);

        gd::LbfgsResult result;
        BlasCall blas;
        bool no_memory = false;
        {
            py::gil_scoped_release nogil;
            ParamsHold hold(params_mutex_, this, Hold::exclusive);  // predict waits
            hold.take();
            if (reserved(d.n))
                result = gd::lbfgs_step(*net_, d.x, d.n, d.y, d.sample_weight, reg, lconfig,
                                        state_ptr.data(), rp, stp, python_signals());
            else
                no_memory = true;
        }
        if (no_memory) raise_workspace_error(net_->workspace_bytes(d.n), d.n);
        if (result.interrupted) throw py::error_already_set();  // the signal handler's exception
        return result.loss;
    }

private:
    // A checked train_epoch call: its arrays kept alive, the epoch's data and settings.
    struct EpochCall {
        CallData<T> d;
        gd::EpochData<T> data;
        index_t batch_size = 0;
        index_t rows = 0;  // the largest batch: min(batch_size, rows of order)
        gd::OptimizerConfig config;
        std::vector<T*> state;
        std::int64_t* step = nullptr;
        gd::Regularisers reg;
        std::size_t data_kept = 0;  // d.keep's first entries: the data's (check_epoch_data)
    };

    // train_epoch's data (X, Y, sample_weight, order), checked (memory safety only) with the
    // GIL held: into p.d and p.data.
    void check_epoch_data(const py::object& X, const py::object& Y,
                          const py::object& sample_weight, const py::object& order,
                          EpochCall& p) const {
        p.d = check_data(X, Y, sample_weight);
        CallData<T>& d = p.d;
        const py::array ord = checks::array_of<std::int64_t>(order, "order", 1, "(n_order,)");
        const index_t m = ord.shape(0);
        const auto* op = static_cast<const std::int64_t*>(ord.data());
        for (index_t i = 0; i < m; ++i)
            if (op[i] < 0 || op[i] >= d.n)
                checks::fail(ErrorCode::index, "order must hold row indices of X in [0, " +
                                                   str(d.n) + "), got " + std::to_string(op[i]) +
                                                   " at position " + str(i));
        d.keep.push_back(ord);
        p.data_kept = d.keep.size();
        p.data.x = d.x;
        p.data.n_rows = d.n;
        p.data.y = d.y;
        p.data.sample_weight = d.sample_weight;
        p.data.order = op;
        p.data.n_order = m;
    }

    // Whether check_data accepts the same X, Y and sample_weight for this engine as for
    // `other` (the same input and output sizes and loss): then `other`'s checked data serves.
    bool same_data_checks(const Engine& other) const noexcept {
        return n_inputs() == other.n_inputs() && n_outputs() == other.n_outputs() &&
               net_->loss() == other.net_->loss();
    }

    // train_epoch's arguments, checked (memory safety only) with the GIL held; the data
    // already checked in `p` (check_epoch_data).
    void check_epoch(EpochCall& p, const py::object& batch_size, const py::object& optimizer,
                     const py::object& hyper, const py::object& state, const py::object& step,
                     double l2, double label_smoothing, const py::object& dropout,
                     std::uint64_t dropout_seed) const {
        CallData<T>& d = p.d;
        const index_t m = p.data.n_order;

        // (A batch size is a row count: at least one row per batch.)
        const long long bs = checks::integer(batch_size, "batch_size");
        if (bs < 1)
            checks::fail(ErrorCode::index, "batch_size must be at least 1, got " +
                                               std::to_string(bs));

        const int optimizer_code = checks::code_in(optimizer, "optimizer", "an optimizer code",
                                                   gd::n_optimizer_codes);
        if (optimizer_code == int(gd::Optimizer::lbfgs))
            checks::fail(ErrorCode::index, "optimizer " + std::to_string(optimizer_code) +
                                               " (lbfgs) is a full-batch solver: call "
                                               "lbfgs_step, not train_epoch");
        const std::string hyper_shape = "(" + std::to_string(gd::n_hyper) + ",)";
        const py::array h = checks::array_of<double>(hyper, "hyper", 1, hyper_shape);
        checks::dim(h, 0, gd::n_hyper, "hyper", hyper_shape);
        p.config = gd::OptimizerConfig::from_hyper(gd::Optimizer(optimizer_code),
                                                   static_cast<const double*>(h.data()));

        const gd::OptimizerConfig& config = p.config;
        check_state(state, config.n_slots(), [&config] {
                        return std::string(gd::optimizer_name(int(config.optimizer))) +
                               " with momentum " + std::to_string(config.momentum);
                    }, d.keep, p.state);

        py::array st = checks::array_of<std::int64_t>(step, "step", 1, "(1,)", true);
        checks::dim(st, 0, 1, "step", "(1,)");
        p.step = static_cast<std::int64_t*>(st.mutable_data());
        d.keep.push_back(st);
        p.reg = regularisers(l2, label_smoothing, dropout, dropout_seed, d.keep);
        p.batch_size = index_t(bs);
        p.rows = std::min<index_t>(index_t(bs), m);
    }

    // The workspace of a checked epoch (see reserved).
    bool reserved_for(const EpochCall& p) noexcept {
        return reserved(p.rows, &p.data.y, p.data.sample_weight != nullptr,
                        p.reg.dropout != nullptr);
    }

    // The largest history_size lbfgs_step takes (its state is 2 * history_size + 4 arrays per
    // parameter).
    static constexpr int max_history_size = 100000;

    // predict keeps the GIL for a pass of at most this many multiply-adds: computing it is then
    // cheaper than releasing and re-taking the GIL (two hand-offs, and a waiting thread woken
    // each time), which a one-row call would otherwise pay for nothing.
    static constexpr double small_predict_multiply_adds = 65536.0;
    // Such a pass computes its hidden layers in a per-thread buffer of this many elements (16 or
    // 32 KiB: a few rows of layers up to a few hundred wide), allocated once per thread; each
    // call uses it from start to end without running Python code in between.
    static constexpr index_t small_predict_elements = 4096;
    static T* small_predict_scratch() {
        thread_local std::unique_ptr<T[]> buffer;
        if (!buffer) buffer.reset(new T[small_predict_elements]);  // bad_alloc -> MemoryError
        return buffer.get();
    }

    // The C API's scratch: this thread's buffer of at least `size` elements, kept for the next
    // call up to capi_kept_elements (larger ones are freed when the thread makes a smaller
    // call), or null when it cannot be allocated.
    static constexpr index_t capi_kept_elements = index_t(1) << 20;
    static T* capi_scratch(index_t size) noexcept {
        thread_local std::unique_ptr<T[]> buffer;
        thread_local index_t capacity = 0;
        size = std::max<index_t>(size, 1);  // (a one-layer network needs none: not null)
        if (size <= capacity && (capacity <= capi_kept_elements || size > capi_kept_elements / 2))
            return buffer.get();
        buffer.reset();  // freed first: the new one may need the room
        capacity = 0;
        buffer.reset(new (std::nothrow) T[std::size_t(size)]);
        if (buffer) capacity = size;
        return buffer.get();
    }

    // Wait for `hold` (a training call has the parameters). With the GIL held, release it
    // while waiting: the training call may need it to poll for signals (a deadlock otherwise).
    // (PyGILState_Check is callable from any thread, with or without the GIL.)
    static void take_without_gil(ParamsHold& hold) {
        if (!PyGILState_Check()) {
            hold.take();
            return;
        }
        PyThreadState* state = PyEval_SaveThread();
        try {
            hold.take();
        } catch (...) {
            PyEval_RestoreThread(state);
            throw;
        }
        PyEval_RestoreThread(state);
    }

    // Grow the workspace to `rows` rows (and the batch buffers, for train_epoch); when it grew,
    // check that OpenBLAS still has room for its own allocations (blas::buffer_room; a
    // gemm_driver malloc that fails inside OpenBLAS ends the process). False if either fails.
    // (Only on growth: the probe's munmap costs microseconds, and a workspace that did not
    // grow took no memory since the last call.)
    bool reserved(index_t rows, const gd::Targets<T>* batch = nullptr, bool weights = false,
                  bool dropout = false) noexcept {
        const index_t before = net_->capacity();
        try {
            net_->reserve(rows);
            if (batch != nullptr) net_->reserve_batch(rows, batch->labels != nullptr, weights);
            if (dropout) net_->reserve_dropout(rows);
        } catch (const std::bad_alloc&) {
            return false;
        }
        return net_->capacity() == before || gd::blas::buffer_room();
    }

    // The regularisers of a call. l2 and label_smoothing are passed on as they are (their
    // values are the Python layer's to check); dropout is None or a float64 array of shape
    // (n_layers,) (kept alive in `keep`), one rate per layer.
    gd::Regularisers regularisers(double l2, double label_smoothing, const py::object& dropout,
                                  std::uint64_t dropout_seed,
                                  std::vector<py::array>& keep) const {
        gd::Regularisers reg;
        reg.l2 = l2;
        reg.label_smoothing = label_smoothing;
        reg.dropout_seed = dropout_seed;
        if (!dropout.is_none()) {
            const std::string shape = "(" + str(n_layers()) + ",)";
            const py::array rates = checks::array_of<double>(dropout, "dropout", 1, shape);
            checks::dim(rates, 0, n_layers(), "dropout", shape);
            reg.dropout = static_cast<const double*>(rates.data());
            keep.push_back(rates);
        }
        return reg;
    }

    static py::list to_list(const std::vector<py::array>& arrays) {
        py::list out;
        for (const auto& a : arrays) out.append(a);
        return out;
    }

    // X: (n, n_inputs) of dtype T with at least min_rows rows.
    py::array check_x(const py::object& X, index_t min_rows) const {
        const std::string shape = "(n_samples, " + str(n_inputs()) + ")";
        py::array x = checks::array_of<T>(X, "X", 2, shape);
        checks::dim(x, 1, n_inputs(), "X", shape);
        if (x.shape(0) < min_rows)
            checks::fail(ErrorCode::shape,
                         "X must have at least one row, got shape " + checks::shape_of(x));
        return x;
    }

    // X, Y and sample_weight of loss / gradients / train_epoch.
    CallData<T> check_data(const py::object& X, const py::object& Y,
                           const py::object& sample_weight) const {
        CallData<T> d;
        const py::array x = check_x(X, 1);
        d.n = x.shape(0);
        d.x = static_cast<const T*>(x.data());
        d.keep.push_back(x);

        const index_t k = n_outputs();
        const std::string dense_shape = "(" + str(d.n) + ", " + str(k) + ")";
        const bool cross_entropy = net_->loss() == gd::Loss::cross_entropy;
        if (cross_entropy && py::isinstance<py::array_t<std::int64_t, 0>>(Y)) {
            const std::string shape = "(" + str(d.n) + ",)";
            const py::array y = checks::array_of<std::int64_t>(Y, "Y", 1, shape);
            checks::dim(y, 0, d.n, "Y", shape);
            const auto* labels = static_cast<const std::int64_t*>(y.data());
            for (index_t j = 0; j < d.n; ++j)
                if (labels[j] < 0 || labels[j] >= k)
                    checks::fail(ErrorCode::index, "Y must hold class indices in [0, " + str(k) +
                                                       "), got " + std::to_string(labels[j]) +
                                                       " at row " + str(j));
            d.y.labels = labels;
            d.keep.push_back(y);
        } else {
            if (cross_entropy && py::isinstance<py::array>(Y) &&
                !py::isinstance<py::array_t<T, 0>>(Y))
                checks::fail(ErrorCode::dtype,
                             "Y must be int64 class indices of shape (" + str(d.n) + ",) or a " +
                                 checks::dtype_name<T>() + " array of shape " + dense_shape +
                                 ", got dtype " +
                                 checks::dtype_of(py::reinterpret_borrow<py::array>(Y)));
            const py::array y = checks::array_of<T>(Y, "Y", 2, dense_shape);
            checks::dim(y, 0, d.n, "Y", dense_shape);
            checks::dim(y, 1, k, "Y", dense_shape);
            d.y.values = static_cast<const T*>(y.data());
            d.keep.push_back(y);
        }

        if (!sample_weight.is_none()) {
            const std::string shape = "(" + str(d.n) + ",)";
            const py::array w = checks::array_of<T>(sample_weight, "sample_weight", 1, shape);
            checks::dim(w, 0, d.n, "sample_weight", shape);
            d.sample_weight = static_cast<const T*>(w.data());
            d.keep.push_back(w);
        }
        return d;
    }

    // dW (weights=true) or db: a list of writeable T arrays in the shapes of the parameters.
    void check_like_parameters(const py::object& obj, const std::string& name, bool weights,
                               std::vector<py::array>& keep, std::vector<T*>& ptrs) const {
        const auto list = checks::items(obj, name);
        if (index_t(list.size()) != n_layers())
            checks::fail(ErrorCode::shape, name + " must hold " + str(n_layers()) +
                                               " arrays, got " + std::to_string(list.size()));
        for (std::size_t i = 0; i < list.size(); ++i) {
            add_parameter_shaped(list[i], checks::item(name, i), net_->layer(index_t(i)), weights,
                                 keep, ptrs);
        }
    }

    // A writeable C-contiguous T array of the shape of layer l's weights (is_w) or bias.
    static void add_parameter_shaped(const py::handle& obj, const std::string& item,
                                     const gd::DenseLayer<T>& l, bool is_w,
                                     std::vector<py::array>& keep, std::vector<T*>& ptrs) {
        const std::string shape = is_w ? "(" + str(l.n_inputs) + ", " + str(l.n_outputs) + ")"
                                       : "(" + str(l.n_outputs) + ",)";
        py::array a = checks::array_of<T>(obj, item, is_w ? 2 : 1, shape, true);
        if (is_w) checks::dim(a, 0, l.n_inputs, item, shape);
        checks::dim(a, is_w ? 1 : 0, l.n_outputs, item, shape);
        ptrs.push_back(static_cast<T*>(a.mutable_data()));
        keep.push_back(std::move(a));
    }

    // Optimizer state: n_slots arrays per parameter W0, b0, W1, b1, ... in their shapes;
    // rule() names the optimizer and what sets its slot count, for the message (built only
    // then: formatting it cost a training call ~1 us).
    template <class Rule>
    void check_state(const py::object& obj, int n_slots, const Rule& rule,
                     std::vector<py::array>& keep, std::vector<T*>& ptrs) const {
        const auto list = checks::items(obj, "state");
        const index_t expected = 2 * n_layers() * n_slots;
        if (index_t(list.size()) != expected)
            checks::fail(ErrorCode::shape,
                         "state must hold " + str(expected) + " arrays (" +
                             std::to_string(n_slots) + " per parameter for " + rule() + "), got " +
                             std::to_string(list.size()));
        for (std::size_t e = 0; e < list.size(); ++e) {
            const index_t p = index_t(e) / n_slots;  // parameter: W_i (p = 2i) or b_i (p = 2i + 1)
            add_parameter_shaped(list[e], checks::item("state", e), net_->layer(p / 2), p % 2 == 0,
                                 keep, ptrs);
        }
    }

    std::vector<py::array> weights_, biases_;  // the caller's arrays, kept alive
    std::vector<int> activations_;
    std::unique_ptr<gd::Network<T>> net_;      // raw pointers into weights_ / biases_
    index_t multiply_adds_ = 0;                // of one sample's forward pass
    std::atomic<bool> busy_{false};
    // Shared by predict calls, exclusive for the calls that use the workspace or change the
    // parameters; always taken with the GIL released (or without waiting), so never a deadlock.
    std::shared_mutex params_mutex_;
    std::unique_ptr<ParamsHold> python_hold_;  // lock_parameters' hold, until unlock_parameters
};

template <class T>
void bind_engine_class(py::module_& m, const char* name) {
    using E = Engine<T>;
    const std::string dt = checks::dtype_name<T>();
    const std::string doc = R"pbdoc(Training engine over )pbdoc" + dt + R"pbdoc( parameter arrays (docs/design.md).

The engine keeps the caller's weight and bias arrays (no copies) and updates them in place.
Arrays must have dtype )pbdoc" + dt + R"pbdoc( (int64 for labels, order and step, float64 for hyper) and be
C-contiguous: a wrong dtype or layout raises TypeError, a wrong shape or value ValueError.
One call at a time per engine; a concurrent or re-entrant call raises RuntimeError.)pbdoc";
    // The instance is built by __new__ itself: pybind11 (3.1) would otherwise hand methods the
    // unconstructed storage of an object made by EngineF32.__new__(EngineF32) without __init__
    // (pybind/pybind11#6153), a segfault. __init__ then finds it constructed and does nothing.
    // Final: a Python subclass could not be built by this __new__.
    py::class_<E> cls(m, name, doc.c_str(), py::is_final());
    cls.def_static(
           "__new__",
           [](const py::object& type, const py::object& weights, const py::object& biases,
              const py::object& activations, const py::object& loss) {
               if (!type.is(py::type::of<E>()))
                   throw py::type_error(std::string(py::str(type)) + " is not " +
                                        py::str(py::type::of<E>()).cast<std::string>());
               return std::make_unique<E>(weights, biases, activations, loss);
           },
           py::arg("cls"), py::arg("weights"), py::arg("biases"), py::arg("activations"),
           py::arg("loss"))
        .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&>(),
             py::arg("weights"), py::arg("biases"), py::arg("activations"), py::arg("loss"),
             R"pbdoc(weights[i]: (n_in_i, n_out_i), biases[i]: (n_out_i,), activations: codes,
loss: code. bce needs a sigmoid output layer, cross_entropy a softmax one.)pbdoc")
        .def_property_readonly("n_inputs", &E::n_inputs, "Number of input features.")
        .def_property_readonly("n_outputs", &E::n_outputs, "Number of outputs of the last layer.")
        .def_property_readonly("n_layers", &E::n_layers, "Number of layers.")
        .def_property_readonly("loss_code", &E::loss_code, "The loss code.")
        .def_property_readonly("activations", &E::activations, "The activation codes per layer.")
        .def_property_readonly("weights", &E::weights, "The weight arrays the engine updates.")
        .def_property_readonly("biases", &E::biases, "The bias arrays the engine updates.")
        .def_property_readonly("dtype", [](const E&) { return py::dtype::of<T>(); },
                               "The parameters' dtype.")
        .def("forward", &E::forward, py::arg("X"),
             R"pbdoc(Output activations (n_samples, n_outputs) for X of shape (n_samples, n_inputs).)pbdoc")
        .def("predict", &E::predict, py::arg("X"),
             R"pbdoc(Output activations (n_samples, n_outputs) of X, for many threads at once.

X: a numpy.ndarray of the engine's dtype, C-contiguous and aligned, of shape (n_inputs,) (one
sample) or (n_samples, n_inputs) with n_samples >= 1, every value finite. Anything else returns
None (no error, nothing computed): validate and convert X, then call again.)pbdoc")
        .def("loss", &E::loss, py::arg("X"), py::arg("Y"), py::arg("sample_weight"),
             py::arg("l2") = 0.0, py::arg("label_smoothing") = 0.0,
             py::arg("dropout") = py::none(), py::arg("dropout_seed") = 0,
             py::arg("dropout_step") = 0,
             R"pbdoc(The mean loss sum_j(w_j l_j) / sum_j(w_j), as a float (computed in the dtype),
plus the l2 penalty 0.5 l2 sum_i ||W_i||^2 / sum_j(w_j).

Y: int64 class indices (n,) or probabilities (n, k) for cross_entropy, else (n, n_outputs).
sample_weight: None or (n,), non-negative with a positive sum. label_smoothing: cross_entropy
and bce targets smoothed (torch's formula). dropout: None or float64 (n_layers,) rates; the
masks of (dropout_seed, dropout_step) are applied as in training. Values unchecked.)pbdoc")
        .def("gradients", &E::gradients, py::arg("X"), py::arg("Y"), py::arg("sample_weight"),
             py::arg("dW"), py::arg("db"), py::arg("l2") = 0.0, py::arg("label_smoothing") = 0.0,
             py::arg("dropout") = py::none(), py::arg("dropout_seed") = 0,
             py::arg("dropout_step") = 0,
             R"pbdoc(Fill dW[i] and db[i] (the shapes of the parameters) in place with the gradient
of loss(X, Y, sample_weight, l2, label_smoothing, dropout, dropout_seed, dropout_step); return
that loss.)pbdoc")
        .def("train_epoch", &E::train_epoch, py::arg("X"), py::arg("Y"), py::arg("sample_weight"),
             py::arg("order"), py::arg("batch_size"), py::arg("optimizer"), py::arg("hyper"),
             py::arg("state"), py::arg("step"), py::arg("l2") = 0.0,
             py::arg("label_smoothing") = 0.0, py::arg("dropout") = py::none(),
             py::arg("dropout_seed") = 0,
             R"pbdoc(One epoch over the rows order[0:bs], order[bs:2bs], ...; updates the parameters,
the optimizer state and step[0] in place. Returns sum_b(loss_b w_b) / sum_b(w_b), or the
first non-finite batch loss (that batch is not applied). A batch whose sample weights sum to
zero is skipped (no update, no step). Releases the GIL; checks for
signals between batches and raises e.g. KeyboardInterrupt after a consistent step.

order: int64 (m,) row indices of X. optimizer: 0 sgd, 1 adam, 2 adamw, 3 rmsprop.
hyper: float64 (8,) [lr, momentum, nesterov, weight_decay, beta1, beta2, eps, alpha]
(gdcore/codes.def); their values are the caller's to check (gdcore.optimizers does).
state: n_slots arrays per parameter W0, b0, W1, b1, ... step: int64 (1,).
l2, label_smoothing, dropout, dropout_seed: as loss's; each batch's loss includes the l2
penalty over its weight sum, and its dropout masks are those of step t = step[0] + 1.)pbdoc")
        .def_static("train_epoch_many", &E::train_epoch_many, py::arg("jobs"),
                    py::arg("n_threads") = 1,
                    R"pbdoc(train_epoch on several engines of this class in one call, each network exactly as
its own train_epoch call (the same batches and arithmetic: equal results bit for bit),
interleaved batch by batch and split over up to n_threads threads. Returns the list of the
epoch losses, in the order of the jobs.

jobs: a list of tuples (engine, X, Y, sample_weight, order, batch_size, optimizer, hyper,
state, step, l2, label_smoothing, dropout, dropout_seed): each engine's train_epoch arguments,
checked as train_epoch checks them; the engines must be distinct (a repeated one raises
RuntimeError, as a concurrent call). Releases the GIL; checks for signals between batches and
raises e.g. KeyboardInterrupt with every network after a whole number of steps.)pbdoc")
        .def("lbfgs_step", &E::lbfgs_step, py::arg("X"), py::arg("Y"), py::arg("sample_weight"),
             py::arg("config"), py::arg("state"), py::arg("run"), py::arg("step"),
             py::arg("l2") = 0.0, py::arg("label_smoothing") = 0.0,
             R"pbdoc(One L-BFGS step on the full batch (all rows of X): up to max_iter iterations of
the two-loop recursion with the strong Wolfe line search, as SciPy's L-BFGS-B without bounds.
Updates the parameters, state, run and step[0] in place; returns the objective where the step
started (NaN if the parameters are not finite after it). Releases the GIL; checks for signals
between evaluations and raises e.g. KeyboardInterrupt after a whole iteration.

config: float64 (n,) laid out by GD_LBFGS in gdcore/codes.def [lr, history_size, max_iter,
max_eval, tolerance_grad, tolerance_change, line_search, max_fun, max_ls].
state: 2 * history_size + 4 arrays per parameter W0, b0, W1, b1, ...
run: float64 laid out by GD_LBFGS_RUN (the objective and whether it is current, counts, the
history's ring position, status). step: int64 (1,). l2, label_smoothing: as loss's (the
objective includes them; L-BFGS never drops out).)pbdoc")
        .def("_lock_parameters", &E::lock_parameters,
             R"pbdoc(Hold the parameters exclusively, for Python code that writes the parameter
arrays in place: the C API's GIL-free forwards (gdcore/capi.h) wait. Make no call on this
engine until _unlock_parameters() (from the same thread).)pbdoc")
        .def("_unlock_parameters", &E::unlock_parameters,
             R"pbdoc(Release the hold of _lock_parameters().)pbdoc")
        .def("__repr__", [name](const E& e) {
            std::string sizes = std::to_string(e.n_inputs());
            for (index_t i = 0; i < e.n_layers(); ++i) {
                sizes += "-" + std::to_string(e.n_outputs_of(i));
            }
            return std::string(name) + "(" + sizes + ", loss=" + gd::loss_name(e.loss_code()) + ")";
        });
}

}  // namespace

void bind_engine(py::module_& m) {
    ndarray_type = reinterpret_cast<PyTypeObject*>(
        py::object(py::module_::import("numpy").attr("ndarray")).release().ptr());
    type_num_float32 = py::dtype::of<float>().num();
    type_num_float64 = py::dtype::of<double>().num();
    bind_engine_class<float>(m, "EngineF32");
    bind_engine_class<double>(m, "EngineF64");
}

namespace engine_capi {

bool lookup(PyObject* obj, Ref* ref) {
    const py::handle h(obj);
    if (py::isinstance<Engine<float>>(h)) {
        auto* e = h.cast<Engine<float>*>();
        *ref = {e, int(sizeof(float)), e->n_inputs(), e->n_outputs()};
        return true;
    }
    if (py::isinstance<Engine<double>>(h)) {
        auto* e = h.cast<Engine<double>*>();
        *ref = {e, int(sizeof(double)), e->n_inputs(), e->n_outputs()};
        return true;
    }
    return false;
}

int forward_f32(void* engine, const float* x, index_t n, float* out) noexcept {
    return static_cast<Engine<float>*>(engine)->capi_forward(x, n, out);
}

int forward_f64(void* engine, const double* x, index_t n, double* out) noexcept {
    return static_cast<Engine<double>*>(engine)->capi_forward(x, n, out);
}

}  // namespace engine_capi
