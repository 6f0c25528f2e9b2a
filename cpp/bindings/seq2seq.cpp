// Bindings for attention and Seq2Seq: Attention32/64 (forward/backward over a batch) and Seq2Seq32/64 (training
// batches and decoding, whole time loops in C++). Friendly argument checks live in python/rnnkit; these check
// what the C++ relies on (shapes, ranges), release the GIL and hold a mutex per object.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "common.hpp"
#include "rnnkit/rnnkit.hpp"

namespace py = pybind11;

namespace {

template <class S>
using Array = py::array_t<S, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int, py::array::c_style | py::array::forcecast>;
using Tokens = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

using rnnkit_bindings::shape_str;

void require(bool ok, const std::string& what, const py::array& a) {
    if (!ok) throw py::value_error(what + ", got " + shape_str(a));
}

template <class S>
struct AttentionBox {
    rnnkit::Attention<S> net;
    std::mutex mutex;
    explicit AttentionBox(rnnkit::Attention<S>&& n) : net(std::move(n)) {}
};

template <class S>
struct Seq2SeqBox {
    rnnkit::Seq2Seq<S> net;
    std::mutex mutex;
    explicit Seq2SeqBox(rnnkit::Seq2Seq<S>&& n) : net(std::move(n)) {}
};

template <class S>
const int* lengths_ptr(const std::optional<Ints>& lengths, py::ssize_t B, const char* name) {
    if (!lengths) return nullptr;
    require(lengths->ndim() == 1 && lengths->shape(0) == B,
            std::string(name) + ": expected shape (" + std::to_string(B) + ",)", *lengths);
    return lengths->data();
}

template <class S>
void bind_attention(py::module_& m, const char* name) {
    using A = AttentionBox<S>;
    py::class_<A>(m, name)
        .def(py::init([](const std::string& kind, int query_size, int key_size, int units, std::uint64_t seed) {
                 return new A(rnnkit::Attention<S>(rnnkit::parse_attention(kind), query_size, key_size, units, seed));
             }),
             py::arg("kind"), py::arg("query_size"), py::arg("key_size"), py::arg("units") = 0, py::arg("seed") = 0)
        .def_property_readonly("units", [](const A& a) { return a.net.units(); })
        .def_property_readonly("proj_size", [](const A& a) { return a.net.proj_size(); })
        .def("parameter_info",
             [](const A& self) {
                 py::list out;
                 for (const auto& p : self.net.parameters())
                     out.append(py::make_tuple(p.name, py::tuple(py::cast(p.shape)), p.offset, p.size));
                 return out;
             })
        .def("param_slab",
             [](py::object o) {
                 A& a = o.cast<A&>();
                 return Array<S>({py::ssize_t(a.net.num_parameters())}, {py::ssize_t(sizeof(S))}, a.net.param_data(), o);
             })
        .def("grad_slab",
             [](py::object o) {
                 A& a = o.cast<A&>();
                 return Array<S>({py::ssize_t(a.net.num_parameters())}, {py::ssize_t(sizeof(S))}, a.net.grad_data(), o);
             })
        // forward(query [N, Q], keys [N, S, K], lengths [N] or None) -> (context [N, K], weights [N, S], proj)
        .def("forward",
             [](A& self, Array<S> query, Array<S> keys, std::optional<Ints> lengths) {
                 const int Q = self.net.query_size(), K = self.net.key_size();
                 require(query.ndim() == 2 && query.shape(1) == Q, "query: expected shape (B, " + std::to_string(Q) + ")", query);
                 const py::ssize_t B = query.shape(0);
                 require(keys.ndim() == 3 && keys.shape(0) == B && keys.shape(2) == K && keys.shape(1) >= 1,
                         "keys: expected shape (" + std::to_string(B) + ", S >= 1, " + std::to_string(K) + ")", keys);
                 const py::ssize_t Sn = keys.shape(1);
                 const int* len = lengths_ptr<S>(lengths, B, "lengths");
                 for (py::ssize_t b = 0; len && b < B; ++b)
                     if (len[b] < 0 || len[b] > Sn)
                         throw py::value_error("lengths: expected values in 0.." + std::to_string(Sn) + ", got " +
                                               std::to_string(len[b]) + " at index " + std::to_string(b));
                 Array<S> context({B, py::ssize_t(K)}), weights({B, Sn});
                 Array<S> proj({B, Sn, py::ssize_t(self.net.proj_size())});
                 {
                     py::gil_scoped_release release;
                     std::lock_guard<std::mutex> lock(self.mutex);
                     self.net.prepare(proj.mutable_data(), keys.data(), int(B), int(Sn));
                     self.net.forward(context.mutable_data(), weights.mutable_data(), query.data(), keys.data(),
                                      proj.data(), len, nullptr, int(B), int(Sn));
                 }
                 return py::make_tuple(context, weights, proj);
             },
             py::arg("query"), py::arg("keys"), py::arg("lengths") = py::none())
        // backward(dcontext, dweights or None, query, keys, proj, weights, lengths) -> (dquery, dkeys)
        .def("backward",
             [](A& self, Array<S> dcontext, std::optional<Array<S>> dweights, Array<S> query, Array<S> keys,
                Array<S> proj, Array<S> weights, std::optional<Ints> lengths) {
                 const py::ssize_t B = query.shape(0), Sn = keys.shape(1), K = self.net.key_size();
                 require(dcontext.ndim() == 2 && dcontext.shape(0) == B && dcontext.shape(1) == K,
                         "dcontext: expected shape (" + std::to_string(B) + ", " + std::to_string(K) + ")", dcontext);
                 if (dweights)
                     require(dweights->ndim() == 2 && dweights->shape(0) == B && dweights->shape(1) == Sn,
                             "dweights: expected shape (" + std::to_string(B) + ", " + std::to_string(Sn) + ")", *dweights);
                 const int* len = lengths_ptr<S>(lengths, B, "lengths");
                 Array<S> dquery({B, py::ssize_t(self.net.query_size())}), dkeys({B, Sn, K});
                 std::vector<S> dproj(std::size_t(B) * Sn * self.net.proj_size(), S(0));
                 {
                     py::gil_scoped_release release;
                     std::lock_guard<std::mutex> lock(self.mutex);
                     std::fill(dkeys.mutable_data(), dkeys.mutable_data() + dkeys.size(), S(0));
                     self.net.backward(dquery.mutable_data(), dkeys.mutable_data(), dproj.data(), dcontext.data(),
                                       dweights ? dweights->data() : nullptr, query.data(), weights.data(), keys.data(),
                                       proj.data(), len, nullptr, int(B), int(Sn));
                     self.net.prepare_backward(dkeys.mutable_data(), dproj.data(), keys.data(), int(B), int(Sn));
                 }
                 return py::make_tuple(dquery, dkeys);
             },
             py::arg("dcontext"), py::arg("dweights"), py::arg("query"), py::arg("keys"), py::arg("proj"),
             py::arg("weights"), py::arg("lengths") = py::none());
}

// One side of a batch from Python: int64 ids [B, L] or values [B, L, features] (the model's config says which).
template <class S>
struct Side {
    std::optional<Tokens> tokens;
    std::optional<Array<S>> values;
    py::ssize_t B = 0, L = 0;
};

template <class S>
Side<S> side(const py::array& a, const char* name, int features) {
    Side<S> out;
    if (features > 0) {
        out.values = Array<S>::ensure(a);
        if (!out.values) throw py::type_error(std::string(name) + ": expected an array of values");
        require(out.values->ndim() == 3 && out.values->shape(0) >= 1 && out.values->shape(1) >= 1 &&
                    out.values->shape(2) == features,
                std::string(name) + ": expected shape (B, length, " + std::to_string(features) + ")", *out.values);
        out.B = out.values->shape(0);
        out.L = out.values->shape(1);
    } else {
        out.tokens = Tokens::ensure(a);
        if (!out.tokens) throw py::type_error(std::string(name) + ": expected an array of token ids");
        require(out.tokens->ndim() == 2 && out.tokens->shape(0) >= 1 && out.tokens->shape(1) >= 1,
                std::string(name) + ": expected shape (B, length)", *out.tokens);
        out.B = out.tokens->shape(0);
        out.L = out.tokens->shape(1);
    }
    return out;
}

template <class S>
rnnkit::Seq2SeqBatch<S> source_batch(const Side<S>& src, const std::optional<Ints>& src_lengths) {
    rnnkit::Seq2SeqBatch<S> batch;
    batch.B = int(src.B);
    batch.Sn = int(src.L);
    batch.src_tokens = src.tokens ? src.tokens->data() : nullptr;
    batch.src_values = src.values ? src.values->data() : nullptr;
    batch.src_lengths = lengths_ptr<S>(src_lengths, src.B, "src_lengths");
    return batch;
}

template <class S>
void bind_seq2seq(py::module_& m, const char* name) {
    using M = Seq2SeqBox<S>;
    py::class_<M>(m, name)
        // The config as Python's Seq2Seq.get_config() JSON.
        .def(py::init([](const std::string& config_json) {
                 return new M(rnnkit::Seq2Seq<S>(rnnkit::Seq2Seq<S>::config_from_json(config_json)));
             }),
             py::arg("config_json"))
        .def_static("load", [](const std::string& path) { return new M(rnnkit::Seq2Seq<S>::load(path)); },
                    py::arg("path"))
        .def("save",
             [](M& self, const std::string& path) {
                 py::gil_scoped_release release;
                 std::lock_guard<std::mutex> lock(self.mutex);
                 self.net.save(path);
             },
             py::arg("path"))
        .def("config_json", [](const M& self) { return self.net.config_json(); })
        // [(name, shape, parameter view, gradient view)]; the views keep the model alive.
        .def("parameters",
             [](py::object o) {
                 M& self = o.cast<M&>();
                 py::list out;
                 for (const auto& p : self.net.parameters()) {
                     std::vector<py::ssize_t> shape(p.shape.begin(), p.shape.end());
                     out.append(py::make_tuple(p.name, py::tuple(py::cast(p.shape)), Array<S>(shape, p.data, o),
                                               Array<S>(shape, p.grad, o)));
                 }
                 return out;
             })
        .def("zero_grad", [](M& self) { self.net.zero_grad(); })
        .def_property(
            "rng_counter", [](const M& self) { return self.net.rng_counter(); },
            [](M& self, std::uint64_t c) { self.net.set_rng_counter(c); })
        // train_batch(src [B, S], src_lengths, tgt [B, T], tgt_lengths, teacher_forcing, label_smoothing, backward)
        //   -> (mean loss, tokens, correct)
        .def("train_batch",
             [](M& self, py::array src_in, std::optional<Ints> src_lengths, py::array tgt_in,
                std::optional<Ints> tgt_lengths, double teacher_forcing, double label_smoothing, bool backward) {
                 const auto& c = self.net.config();
                 const Side<S> src = side<S>(src_in, "src", c.src_features), tgt = side<S>(tgt_in, "tgt", c.tgt_features);
                 if (tgt.B != src.B)
                     throw py::value_error("tgt: expected " + std::to_string(src.B) + " sequences (as src), got " +
                                           std::to_string(tgt.B));
                 rnnkit::Seq2SeqBatch<S> batch = source_batch<S>(src, src_lengths);
                 batch.T = int(tgt.L);
                 batch.tgt_tokens = tgt.tokens ? tgt.tokens->data() : nullptr;
                 batch.tgt_values = tgt.values ? tgt.values->data() : nullptr;
                 batch.tgt_lengths = lengths_ptr<S>(tgt_lengths, src.B, "tgt_lengths");
                 rnnkit::BatchLoss r;
                 {
                     py::gil_scoped_release release;
                     std::lock_guard<std::mutex> lock(self.mutex);
                     r = self.net.train(batch, teacher_forcing, label_smoothing, backward);
                 }
                 return py::make_tuple(r.loss, r.tokens, r.correct);
             },
             py::arg("src"), py::arg("src_lengths"), py::arg("tgt"), py::arg("tgt_lengths"),
             py::arg("teacher_forcing") = 1.0, py::arg("label_smoothing") = 0.0, py::arg("backward") = true)
        // decode(src, src_lengths, beam_width, greedy, max_length, length_penalty, keep_attention)
        //   -> (tokens: list of lists, scores, attention: list of (steps, S) arrays or None, ended)
        .def("decode",
             [](M& self, py::array src_in, std::optional<Ints> src_lengths, int beam_width, bool greedy, int max_length,
                double length_penalty, bool keep_attention) {
                 const Side<S> src = side<S>(src_in, "src", self.net.config().src_features);
                 const py::ssize_t B = src.B, Sn = src.L;
                 const rnnkit::Seq2SeqBatch<S> batch = source_batch<S>(src, src_lengths);
                 rnnkit::Decoded<S> d;
                 {
                     py::gil_scoped_release release;
                     std::lock_guard<std::mutex> lock(self.mutex);
                     d = self.net.decode(batch, beam_width, greedy, max_length, length_penalty, keep_attention);
                 }
                 py::list attention;
                 for (py::ssize_t b = 0; keep_attention && b < B; ++b) {
                     const auto& a = d.attention[b];
                     Array<S> arr({py::ssize_t(a.size() / std::size_t(Sn)), Sn});
                     std::copy(a.begin(), a.end(), arr.mutable_data());
                     attention.append(arr);
                 }
                 return py::make_tuple(py::cast(d.tokens), py::cast(d.scores),
                                       keep_attention ? py::object(attention) : py::object(py::none()),
                                       py::cast(d.ended));
             },
             py::arg("src"), py::arg("src_lengths"), py::arg("beam_width") = 1, py::arg("greedy") = true,
             py::arg("max_length") = 50, py::arg("length_penalty") = 0.0, py::arg("keep_attention") = false)
        // generate(src, src_lengths, steps, keep_attention) -> (values [B, steps, tgt_features], attention or None)
        .def("generate",
             [](M& self, py::array src_in, std::optional<Ints> src_lengths, int steps, bool keep_attention) {
                 const Side<S> src = side<S>(src_in, "src", self.net.config().src_features);
                 const rnnkit::Seq2SeqBatch<S> batch = source_batch<S>(src, src_lengths);
                 if (steps < 0) throw py::value_error("steps: expected a non-negative integer");
                 Array<S> out({src.B, py::ssize_t(steps), py::ssize_t(std::max(self.net.config().tgt_features, 1))});
                 std::optional<Array<S>> att;
                 if (keep_attention) att.emplace(std::vector<py::ssize_t>{src.B, py::ssize_t(steps), src.L});
                 {
                     py::gil_scoped_release release;
                     std::lock_guard<std::mutex> lock(self.mutex);
                     self.net.generate(out.mutable_data(), att ? att->mutable_data() : nullptr, batch, steps);
                 }
                 return py::make_tuple(out, att ? py::object(*att) : py::object(py::none()));
             },
             py::arg("src"), py::arg("src_lengths"), py::arg("steps"), py::arg("keep_attention") = false);
}

}  // namespace

void bind_seq2seq(py::module_& m) {
    bind_attention<float>(m, "Attention32");
    bind_attention<double>(m, "Attention64");
    bind_seq2seq<float>(m, "Seq2Seq32");
    bind_seq2seq<double>(m, "Seq2Seq64");
}
