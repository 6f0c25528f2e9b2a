// A Seq2Seq model file: the safetensors layout of every rnnkit model (io/tensor_file.hpp), with rnnkit.model =
// {"class": "Seq2Seq", "config": <Seq2Seq.get_config()>} and the parameters under their state-dict names.
// A file is untrusted input: every check fails with std::invalid_argument naming the file.
#include <cstring>
#include <stdexcept>

#include "io/json.hpp"
#include "io/tensor_file.hpp"
#include "nn/seq2seq_impl.hpp"

namespace rnnkit {
inline namespace v0 {

template <class S>
std::string Seq2Seq<S>::config_json() const {
    const Seq2SeqConfig& c = config();
    json::Writer w;
    w.begin_object();
    w.key("src_vocab");
    if (c.src_features) w.null();
    else w.value(c.src_vocab);
    w.key("tgt_vocab");
    if (c.tgt_features) w.null();
    else w.value(c.tgt_vocab);
    w.key("embed_size").value(c.embed_size).key("hidden_size").value(c.hidden_size);
    w.key("cell").value(c.cell == CellKind::GRU ? "gru" : "lstm");
    w.key("encoder_layers").value(c.encoder_layers).key("bidirectional_encoder").value(c.bidirectional_encoder);
    w.key("attention");
    if (c.attention) w.value(to_string(c.attention_kind));
    else w.null();
    w.key("attention_units");
    if (c.attention_units) w.value(c.attention_units);
    else w.null();
    w.key("input_feeding").value(c.input_feeding);
    w.key("pad_id").value(c.pad_id).key("start_id").value(c.start_id).key("end_id").value(c.end_id);
    w.key("seed").value(std::uint64_t(c.seed));
    w.key("src_features");
    if (c.src_features) w.value(c.src_features);
    else w.null();
    w.key("tgt_features");
    if (c.tgt_features) w.value(c.tgt_features);
    else w.null();
    w.key("dtype").value(sizeof(S) == 4 ? "float32" : "float64");
    w.end_object();
    return w.str();
}

template <class S>
Seq2SeqConfig Seq2Seq<S>::config_from_json(const std::string& text) {
    const json::Value root = json::parse(text);
    if (root.type != json::Value::Type::Object) throw std::invalid_argument("Seq2Seq config: expected an object");
    Seq2SeqConfig c;
    const std::string w = "Seq2Seq config";
    auto integer = [&](const char* key, std::int64_t lo, std::int64_t hi) {
        return root.at(key, w).as_int(w + "." + key, lo, hi);
    };
    auto optional = [&](const char* key) -> int {  // null or absent: 0
        const json::Value* v = root.find(key);
        return v && !v->is_null() ? int(v->as_int(w + "." + key, 1, 1 << 30)) : 0;
    };
    c.src_vocab = optional("src_vocab");
    c.tgt_vocab = optional("tgt_vocab");
    c.src_features = optional("src_features");
    c.tgt_features = optional("tgt_features");
    c.embed_size = int(integer("embed_size", 1, 1 << 20));
    c.hidden_size = int(integer("hidden_size", 1, 1 << 20));
    const std::string& cell = root.at("cell", w).as_string(w + ".cell");
    if (cell == "lstm") c.cell = CellKind::LSTM;
    else if (cell == "gru") c.cell = CellKind::GRU;
    else throw std::invalid_argument(w + ".cell: expected 'lstm' or 'gru', got '" + cell + "'");
    c.encoder_layers = int(integer("encoder_layers", 1, 1000));
    c.bidirectional_encoder = root.at("bidirectional_encoder", w).as_bool(w + ".bidirectional_encoder");
    const json::Value& att = root.at("attention", w);
    c.attention = !att.is_null();
    if (c.attention) c.attention_kind = parse_attention(att.as_string(w + ".attention"));
    const json::Value* units = root.find("attention_units");
    c.attention_units = units && !units->is_null() ? int(units->as_int(w + ".attention_units", 1, 1 << 20)) : 0;
    c.input_feeding = root.at("input_feeding", w).as_bool(w + ".input_feeding");
    c.pad_id = integer("pad_id", 0, 1 << 30);
    c.start_id = integer("start_id", 0, 1 << 30);
    c.end_id = integer("end_id", 0, 1 << 30);
    const json::Value* seed = root.find("seed");
    c.seed = seed && !seed->is_null() ? std::uint64_t(seed->as_int(w + ".seed", 0, std::int64_t(1) << 53)) : 0;
    validate(c);
    return c;
}

template <class S>
Seq2Seq<S> Seq2Seq<S>::load(const std::string& path) {
    detail::TensorFile file = detail::read_tensor_file(path);
    auto fail = [&path](const std::string& why) -> void {
        throw std::invalid_argument("rnnkit model file '" + path + "': " + why);
    };
    auto kind = file.metadata.find("rnnkit.kind");
    if (kind == file.metadata.end() || kind->second != "model") fail("not a model file");
    auto arch = file.metadata.find("rnnkit.model");
    if (arch == file.metadata.end()) fail("no architecture (rnnkit.model) in its metadata");
    Seq2SeqConfig config;
    try {
        const json::Value root = json::parse(arch->second);
        const json::Value* cls = root.find("class");
        if (!cls || cls->type != json::Value::Type::String || cls->string != "Seq2Seq")
            fail("holds no Seq2Seq (load a Sequential model with rnnkit::Model::load)");
        config = config_from_json(json::dump(root.at("config", "model")));
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        if (what.rfind("rnnkit model file", 0) == 0) throw;
        fail("bad architecture: " + what);
    }
    Seq2Seq model(config);
    auto params = model.parameters();
    for (auto& p : params) {
        auto it = file.tensors.find(p.name);
        if (it == file.tensors.end()) fail("missing tensor '" + p.name + "'");
        const detail::Tensor& t = it->second;
        if (t.shape != p.shape) fail("tensor '" + p.name + "' has the wrong shape");
        if (t.dtype == "F32") {
            for (std::size_t i = 0; i < p.size; ++i) {
                float v;
                std::memcpy(&v, t.bytes.data() + i * sizeof(float), sizeof(float));
                p.data[i] = S(v);
            }
        } else if (t.dtype == "F64") {
            for (std::size_t i = 0; i < p.size; ++i) {
                double v;
                std::memcpy(&v, t.bytes.data() + i * sizeof(double), sizeof(double));
                p.data[i] = S(v);
            }
        } else {
            fail("tensor '" + p.name + "' has dtype " + t.dtype + ", expected F32 or F64");
        }
    }
    if (file.tensors.size() != params.size()) fail("the file holds tensors the architecture does not use");
    return model;
}

template <class S>
void Seq2Seq<S>::save(const std::string& path) const {
    detail::TensorFile file;
    for (const auto& p : const_cast<Seq2Seq*>(this)->parameters()) {
        detail::Tensor t;
        t.dtype = sizeof(S) == 4 ? "F32" : "F64";
        t.shape = p.shape;
        t.bytes.resize(p.size * sizeof(S));
        std::memcpy(t.bytes.data(), p.data, t.bytes.size());
        file.tensors.emplace(p.name, std::move(t));
    }
    file.metadata["rnnkit.kind"] = "model";
    file.metadata["rnnkit.model"] = "{\"class\":\"Seq2Seq\",\"config\":" + config_json() + "}";
    file.metadata["rnnkit.user"] = "{}";
    detail::write_tensor_file(path, std::move(file));
}

#define RNNKIT_SEQ2SEQ_FILE(S)                                                     \
    template std::string Seq2Seq<S>::config_json() const;                          \
    template Seq2SeqConfig Seq2Seq<S>::config_from_json(const std::string&);       \
    template Seq2Seq<S> Seq2Seq<S>::load(const std::string&);                      \
    template void Seq2Seq<S>::save(const std::string&) const;
RNNKIT_SEQ2SEQ_FILE(float)
RNNKIT_SEQ2SEQ_FILE(double)
#undef RNNKIT_SEQ2SEQ_FILE

}  // namespace v0
}  // namespace rnnkit
