// The Python extension rnnkit._core: conversion, validation of what C++ relies on, and GIL release.
// All math is in the rnnkit library; all friendly argument checking is in python/rnnkit.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "common.hpp"
#include "rnnkit/rnnkit.hpp"

namespace py = pybind11;
using rnnkit::CellKind;
using rnnkit::LayerConfig;

namespace {

using rnnkit_bindings::shape_str;

template <class S>
using Array = py::array_t<S, py::array::c_style | py::array::forcecast>;

template <class S>
void require_shape(const char* name, const Array<S>& a, std::initializer_list<py::ssize_t> shape) {
    bool ok = a.ndim() == py::ssize_t(shape.size());
    py::ssize_t i = 0;
    std::string want = "(";
    for (auto s : shape) {
        want += (i ? ", " : "") + std::to_string(s);
        if (ok && a.shape(i) != s) ok = false;
        ++i;
    }
    want += shape.size() == 1 ? ",)" : ")";
    if (!ok) throw py::value_error(std::string(name) + ": expected shape " + want + ", got " + shape_str(a));
}

// A cell's states from Python: None, or a sequence of num_states arrays (each None or of `shape`), h first.
// names: what to call state 0, state 1 and any later one in errors (h0, c0, state0).
template <class S>
using States = std::optional<std::vector<std::optional<Array<S>>>>;
// Shapes: [LD, B, width(k)], width(k) the layer's state_size(k).
template <class S>
void state_pointers(const S** out, const States<S>& given, std::array<const char*, 3> names,
                    const rnnkit::Recurrent<S>& net, py::ssize_t LD, py::ssize_t B) {
    const py::ssize_t num_states = net.num_states();
    if (!given) return;
    if (py::ssize_t(given->size()) != num_states)
        throw py::value_error(std::string(names[2]) + ": expected " + std::to_string(num_states) +
                              " state tensors, got " + std::to_string(given->size()));
    for (py::ssize_t k = 0; k < num_states; ++k)
        if ((*given)[k]) {
            require_shape<S>(names[std::min<py::ssize_t>(k, 2)], *(*given)[k], {LD, B, net.state_size(int(k))});
            out[k] = (*given)[k]->data();
        }
}

// An activation from Python: a name, or (name, params...) (already checked by python/rnnkit).
rnnkit::Nonlinearity nonlinearity(const py::handle& v, const char* what) {
    if (py::isinstance<py::str>(v)) return rnnkit::parse_nonlinearity(v.cast<std::string>(), what);
    const auto t = v.cast<py::tuple>();
    if (t.size() < 1) throw py::value_error(std::string(what) + ": expected a name or (name, parameters...)");
    std::vector<double> params;
    for (std::size_t i = 1; i < t.size(); ++i) params.push_back(t[i].cast<double>());
    return rnnkit::make_nonlinearity(t[0].cast<std::string>(), params, what);
}

// The variant options of LayerConfig, by their field names (python/rnnkit passes the non-default ones).
void apply_options(LayerConfig& c, const py::dict& options) {
    for (auto kv : options) {
        const std::string key = kv.first.cast<std::string>();
        const py::handle v = kv.second;
        if (key == "activation") c.activation = nonlinearity(v, "activation");
        else if (key == "recurrent_activation") c.recurrent_activation = nonlinearity(v, "recurrent_activation");
        else if (key == "cell_clip") c.cell_clip = v.cast<double>();
        else if (key == "input_gate") c.input_gate = v.cast<bool>();
        else if (key == "forget_gate") c.forget_gate = v.cast<bool>();
        else if (key == "output_gate") c.output_gate = v.cast<bool>();
        else if (key == "input_activation") c.input_activation = v.cast<bool>();
        else if (key == "output_activation") c.output_activation = v.cast<bool>();
        else if (key == "coupled_input_forget") c.coupled_input_forget = v.cast<bool>();
        else if (key == "zoneout") c.zoneout = v.cast<double>();
        else if (key == "zoneout_cell") c.zoneout_cell = v.cast<double>();
        else if (key == "recurrent_clip") c.recurrent_clip = v.cast<double>();
        else if (key == "proj_size") c.proj_size = v.cast<int>();
        else if (key == "layer_norm") c.layer_norm = v.cast<bool>();
        else if (key == "full_gate_recurrence") c.full_gate_recurrence = v.cast<bool>();
        else if (key == "num_heads") c.num_heads = v.cast<int>();
        else throw py::value_error("options: unknown option '" + key + "'");
    }
}

// A Recurrent<S> guarded by a mutex: Python threads may share a layer while the GIL is released. Inference
// (forward with training=False) only reads the layer, so such calls share the lock and run at once.
template <class S>
struct Layer {
    rnnkit::Recurrent<S> net;
    std::shared_mutex mutex;
    explicit Layer(const LayerConfig& c) : net(c) {}
};

template <class S>
void bind_layer(py::module_& m, const char* name) {
    using L = Layer<S>;
    py::class_<L>(m, name)
        .def(py::init([](const std::string& kind, int input_size, int hidden_size, int num_layers, bool bias,
                         bool bidirectional, bool peephole, bool linear_before_reset, double dropout, bool cell,
                         std::uint64_t seed, double recurrent_dropout, const std::string& backend,
                         const py::dict& options) {
                 LayerConfig c;
                 c.kind = rnnkit::cell_kind(kind);
                 c.input_size = input_size;
                 c.hidden_size = hidden_size;
                 c.num_layers = num_layers;
                 c.bias = bias;
                 c.bidirectional = bidirectional;
                 c.peephole = peephole;
                 c.linear_before_reset = linear_before_reset;
                 c.dropout = dropout;
                 c.cell = cell;
                 c.seed = seed;
                 c.recurrent_dropout = recurrent_dropout;
                 c.backend = rnnkit::parse_backend(backend);
                 apply_options(c, options);
                 return new L(c);
             }),
             py::arg("kind"), py::arg("input_size"), py::arg("hidden_size"), py::arg("num_layers") = 1,
             py::arg("bias") = true, py::arg("bidirectional") = false, py::arg("peephole") = false,
             py::arg("linear_before_reset") = true, py::arg("dropout") = 0.0, py::arg("cell") = false,
             py::arg("seed") = 0, py::arg("recurrent_dropout") = 0.0, py::arg("backend") = "cpu",
             py::arg("options") = py::dict())
        .def_property_readonly("num_states", [](const L& self) { return self.net.num_states(); })
        .def_property_readonly("state_sizes",
                               [](const L& self) {
                                   std::vector<int> sizes;
                                   for (int k = 0; k < self.net.num_states(); ++k) sizes.push_back(self.net.state_size(k));
                                   return sizes;
                               })
        .def_property_readonly("backend", [](const L& self) { return rnnkit::to_string(self.net.config().backend); })
        .def("parameter_info",
             [](const L& self) {
                 py::list out;
                 for (const auto& p : self.net.parameters())
                     out.append(py::make_tuple(p.name, py::tuple(py::cast(p.shape)), p.offset, p.size));
                 return out;
             })
        // Views into the layer's parameter and gradient slabs; they keep the layer alive.
        .def("param_slab",
             [](py::object self_obj) {
                 L& self = self_obj.cast<L&>();
                 return Array<S>({py::ssize_t(self.net.num_parameters())}, {py::ssize_t(sizeof(S))},
                                 self.net.param_data(), self_obj);
             })
        .def("grad_slab",
             [](py::object self_obj) {
                 L& self = self_obj.cast<L&>();
                 return Array<S>({py::ssize_t(self.net.num_parameters())}, {py::ssize_t(sizeof(S))},
                                 self.net.grad_data(), self_obj);
             })
        .def("zero_grad", [](L& self) { self.net.zero_grad(); })
        .def("reset_parameters", [](L& self, std::uint64_t seed) { self.net.reset_parameters(seed); })
        .def("tape_size", [](const L& self) { return self.net.tape_size(); })
        .def("clear_tape", [](L& self) { self.net.clear_tape(); })
        .def_property(
            "rng_counter", [](const L& self) { return self.net.rng_counter(); },
            [](L& self, std::uint64_t counter) { self.net.set_rng_counter(counter); })
        .def("recorded_shape",
             [](const L& self) -> std::optional<std::pair<int, int>> {
                 if (self.net.tape_size() == 0) return std::nullopt;
                 int T, B;
                 self.net.recorded_shape(T, B);
                 return std::make_pair(T, B);
             })
        // forward(x, state0=None, lengths=None, training=True) -> (y, [state_n, ...]): state0 is None or a
        // sequence of num_states arrays [L*D, B, H] (each may be None), h first.
        .def("forward",
             [](L& self, Array<S> x, States<S> state0,
                std::optional<py::array_t<int, py::array::c_style | py::array::forcecast>> lengths,
                bool training) {
                 const auto& c = self.net.config();
                 const py::ssize_t D = self.net.num_directions(), NS = self.net.num_states();
                 const py::ssize_t LD = py::ssize_t(c.num_layers) * D;
                 if (x.ndim() != 3 || x.shape(2) != c.input_size)
                     throw py::value_error("x: expected shape (T, B, " + std::to_string(c.input_size) +
                                           "), got " + shape_str(x));
                 const py::ssize_t T = x.shape(0), B = x.shape(1);
                 if (T < 1 || B < 1 || T > (1 << 30) || B > (1 << 30) || T * B >= (py::ssize_t(1) << 31))
                     throw py::value_error("x: expected T, B >= 1 and T*B below 2^31, got " + shape_str(x));
                 const S* init[rnnkit::kMaxStates] = {};
                 state_pointers<S>(init, state0, {"h0", "c0", "state0"}, self.net, LD, B);
                 if (lengths && (lengths->ndim() != 1 || lengths->shape(0) != B))
                     throw py::value_error("lengths: expected shape (" + std::to_string(B) + ",), got " +
                                           shape_str(*lengths));
                 Array<S> y({T, B, py::ssize_t(self.net.output_size())});
                 std::vector<Array<S>> finals;
                 S* fin[rnnkit::kMaxStates] = {};
                 for (py::ssize_t k = 0; k < NS; ++k) {
                     finals.emplace_back(std::vector<py::ssize_t>{LD, B, py::ssize_t(self.net.state_size(int(k)))});
                     fin[k] = finals.back().mutable_data();
                 }
                 {
                     py::gil_scoped_release release;
                     std::shared_lock<std::shared_mutex> reading(self.mutex, std::defer_lock);
                     std::unique_lock<std::shared_mutex> writing(self.mutex, std::defer_lock);
                     if (training)
                         writing.lock();
                     else
                         reading.lock();
                     self.net.forward(y.mutable_data(), fin, x.data(), init, lengths ? lengths->data() : nullptr,
                                      int(T), int(B), training);
                 }
                 return py::make_tuple(y, py::cast(finals));
             },
             py::arg("x"), py::arg("state0") = py::none(), py::arg("lengths") = py::none(),
             py::arg("training") = true)
        // backward(dy, dstate_n=None) -> (dx, [dstate0, ...]), dstate_n like forward's state0.
        .def("backward",
             [](L& self, Array<S> dy, States<S> dstate_n) {
                 const auto& c = self.net.config();
                 if (self.net.tape_size() == 0)
                     throw std::logic_error(
                         "backward: no recorded training forward (call forward with training=True first)");
                 int T, B;
                 self.net.recorded_shape(T, B);
                 const py::ssize_t D = self.net.num_directions(), NS = self.net.num_states();
                 const py::ssize_t LD = py::ssize_t(c.num_layers) * D;
                 require_shape<S>("dy", dy, {T, B, py::ssize_t(self.net.output_size())});
                 const S* dn[rnnkit::kMaxStates] = {};
                 state_pointers<S>(dn, dstate_n, {"dh_n", "dc_n", "dstate_n"}, self.net, LD, B);
                 Array<S> dx({py::ssize_t(T), py::ssize_t(B), py::ssize_t(c.input_size)});
                 std::vector<Array<S>> initials;
                 S* d0[rnnkit::kMaxStates] = {};
                 for (py::ssize_t k = 0; k < NS; ++k) {
                     initials.emplace_back(
                         std::vector<py::ssize_t>{LD, py::ssize_t(B), py::ssize_t(self.net.state_size(int(k)))});
                     d0[k] = initials.back().mutable_data();
                 }
                 {
                     py::gil_scoped_release release;
                     std::unique_lock<std::shared_mutex> lock(self.mutex);
                     self.net.backward(dx.mutable_data(), d0, dy.data(), dn);
                 }
                 return py::make_tuple(dx, py::cast(initials));
             },
             py::arg("dy"), py::arg("dstate_n") = py::none());
}

}  // namespace

void bind_training(py::module_& m);  // training.cpp
void bind_registry(py::module_& m);  // registry.cpp
void bind_model(py::module_& m);     // model.cpp
void bind_seq2seq(py::module_& m);   // seq2seq.cpp

#ifndef RNNKIT_MODULE_NAME
#define RNNKIT_MODULE_NAME _core
#endif

PYBIND11_MODULE(RNNKIT_MODULE_NAME, m) {
    m.doc() = "rnnkit's C++ core: recurrent layer kernels (forward and BPTT)";
    // std::invalid_argument becomes ValueError and std::logic_error RuntimeError (pybind11's defaults).
    bind_layer<float>(m, "Recurrent32");
    bind_layer<double>(m, "Recurrent64");
    bind_training(m);
    m.def("set_num_threads", &rnnkit::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &rnnkit::get_num_threads);
    m.def("scratch_bytes", &rnnkit::scratch_bytes);
    m.def("release_scratch", &rnnkit::release_scratch);
    m.attr("__version__") = RNNKIT_VERSION;
    bind_registry(m);
    bind_model(m);
    bind_seq2seq(m);
    m.attr("isa") = rnnkit::instruction_set();
#ifdef RNNKIT_HAVE_OPENMP
    m.attr("has_openmp") = true;
#else
    m.attr("has_openmp") = false;
#endif
}
