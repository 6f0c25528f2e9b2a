// Model: a Sequential for inference in C++ (load/save, predict, streaming). See rnnkit/model.hpp.
#include "rnnkit/model.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "json.hpp"
#include "random.hpp"
#include "rnnkit/recurrent.hpp"
#include "tensor_file.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::Tensor;
using detail::TensorFile;

struct Model::Layer {
    enum class Kind { Recurrent, Dense, Embedding, Dropout, LastStep };
    Kind kind;
    std::unique_ptr<Recurrent<float>> rnn;  // Recurrent
    bool batch_first = false;               // Recurrent, LastStep
    int in = 0, out = 0;                    // Dense: features; Embedding: vocabulary, dimension
    Activation activation = Activation::None;
    bool bias = true;
    std::vector<float> params;              // Dense: weight [out, in] then bias [out]; Embedding: weight [in, out]
    double p = 0;                           // Dropout
    int directions = 1;                     // LastStep
    std::uint64_t seed = 0;

    const char* class_name() const {
        switch (kind) {
            case Kind::Recurrent:
                switch (rnn->config().kind) {
                    case CellKind::LSTM: return "LSTM";
                    case CellKind::GRU: return "GRU";
                    default: return "RNN";
                }
            case Kind::Dense: return "Dense";
            case Kind::Embedding: return "Embedding";
            case Kind::Dropout: return "Dropout";
            default: return "LastStep";
        }
    }
    // (name, shape, data) of each parameter, torch names.
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes() const {
        std::vector<std::pair<std::string, std::vector<std::int64_t>>> s;
        if (kind == Kind::Recurrent)
            for (const auto& info : rnn->parameters()) s.emplace_back(info.name, info.shape);
        if (kind == Kind::Dense) {
            s.push_back({"weight", {out, in}});
            if (bias) s.push_back({"bias", {out}});
        }
        if (kind == Kind::Embedding) s.push_back({"weight", {in, out}});
        return s;
    }
    // Dense: out[rows, out] = act(in[rows, in] W^T + b)
    void dense(float* result, const float* input, int rows) const {
        dense_forward<float>(result, input, params.data(), bias ? params.data() + std::size_t(out) * in : nullptr, rows,
                             in, out, activation);
    }
    float* data(const std::string& name) {
        if (kind == Kind::Recurrent) {
            for (const auto& info : rnn->parameters())
                if (info.name == name) return rnn->param_data() + info.offset;
            return nullptr;
        }
        if (name == "weight" && (kind == Kind::Dense || kind == Kind::Embedding)) return params.data();
        if (name == "bias" && kind == Kind::Dense && bias) return params.data() + std::size_t(out) * in;
        return nullptr;
    }
};

Model::Model() = default;
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

namespace {

const char* activation_name(Activation a) {
    switch (a) {
        case Activation::ReLU: return "relu";
        case Activation::Tanh: return "tanh";
        case Activation::Sigmoid: return "sigmoid";
        case Activation::Softmax: return "softmax";
        default: return nullptr;
    }
}

Activation parse_activation(const json::Value& v) {
    if (v.is_null()) return Activation::None;
    const std::string& s = v.as_string("Dense.activation");
    if (s == "relu") return Activation::ReLU;
    if (s == "tanh") return Activation::Tanh;
    if (s == "sigmoid") return Activation::Sigmoid;
    if (s == "softmax") return Activation::Softmax;
    throw std::invalid_argument("Dense.activation: unknown activation '" + s + "'");
}

std::uint64_t seed_of(const json::Value& config) {
    const json::Value* s = config.find("seed");
    if (!s || s->type != json::Value::Type::Number || !(s->number >= 0) || s->number >= 1.8e19) return 0;
    return std::uint64_t(s->number);
}

void init_uniform(std::vector<float>& v, double bound, std::uint64_t seed) {
    std::mt19937_64 engine(detail::mix(seed, 7));
    for (auto& x : v) x = float(-bound + 2 * bound * detail::uniform01(engine));
}

std::string bool_text(bool b) { return b ? "true" : "false"; }

// Token ids passed as floats (an Embedding first) -> integers, each checked to be a whole number in 0..V-1.
std::vector<std::int64_t> token_ids(const float* values, std::size_t n, int vocabulary, const char* name) {
    std::vector<std::int64_t> tokens(n);
    for (std::size_t r = 0; r < n; ++r) {
        const float v = values[r];
        if (!(v >= 0 && v < float(vocabulary) && v == std::floor(v)))
            throw std::invalid_argument(std::string(name) + ": token ids must be integers in 0.." +
                                        std::to_string(vocabulary - 1));
        tokens[r] = std::int64_t(v);
    }
    return tokens;
}

// v: [A, Bd, F] -> [Bd, A, F] (batch-first <-> time-major).
void swap_leading_axes(std::vector<float>& v, std::vector<float>& scratch, int A, int Bd, int F) {
    scratch.resize(v.size());
    for (int a = 0; a < A; ++a)
        for (int b = 0; b < Bd; ++b)
            std::memcpy(&scratch[(std::size_t(b) * A + a) * F], &v[(std::size_t(a) * Bd + b) * F], sizeof(float) * F);
    v.swap(scratch);
}

}  // namespace

void Model::add_recurrent(const LayerConfig& config, bool batch_first) {
    for (const auto& l : layers_)
        if (l->kind == Layer::Kind::Recurrent && l->batch_first != batch_first)
            throw std::invalid_argument("batch_first: all recurrent layers of a model must agree");
    auto layer = std::make_unique<Layer>();
    layer->kind = Layer::Kind::Recurrent;
    LayerConfig c = config;
    c.cell = false;
    layer->rnn = std::make_unique<Recurrent<float>>(c);
    layer->batch_first = batch_first;
    layer->seed = c.seed;
    layers_.push_back(std::move(layer));
}

void Model::add_dense(int in_features, int out_features, Activation activation, bool bias, std::uint64_t seed) {
    if (in_features < 1 || out_features < 1)
        throw std::invalid_argument("Dense: in_features and out_features must be positive");
    auto layer = std::make_unique<Layer>();
    layer->kind = Layer::Kind::Dense;
    layer->in = in_features;
    layer->out = out_features;
    layer->activation = activation;
    layer->bias = bias;
    layer->seed = seed;
    layer->params.resize(std::size_t(out_features) * in_features + (bias ? out_features : 0));
    init_uniform(layer->params, 1.0 / std::sqrt(double(in_features)), seed);
    layers_.push_back(std::move(layer));
}

void Model::add_embedding(int num_embeddings, int embedding_dim, std::uint64_t seed) {
    if (!layers_.empty()) throw std::invalid_argument("Embedding: only supported as the first layer");
    if (num_embeddings < 1 || embedding_dim < 1)
        throw std::invalid_argument("Embedding: num_embeddings and embedding_dim must be positive");
    auto layer = std::make_unique<Layer>();
    layer->kind = Layer::Kind::Embedding;
    layer->in = num_embeddings;
    layer->out = embedding_dim;
    layer->seed = seed;
    layer->params.resize(std::size_t(num_embeddings) * embedding_dim);
    init_uniform(layer->params, 1.0, seed);
    layers_.push_back(std::move(layer));
}

void Model::add_dropout(double p) {
    if (!(p >= 0 && p < 1)) throw std::invalid_argument("Dropout: p must be in [0, 1)");
    auto layer = std::make_unique<Layer>();
    layer->kind = Layer::Kind::Dropout;
    layer->p = p;
    layers_.push_back(std::move(layer));
}

void Model::add_last_step() {
    const Layer* previous = nullptr;
    for (const auto& l : layers_)
        if (l->kind == Layer::Kind::Recurrent) previous = l.get();
    if (!previous) throw std::invalid_argument("LastStep: needs a recurrent layer before it");
    auto layer = std::make_unique<Layer>();
    layer->kind = Layer::Kind::LastStep;
    layer->directions = previous->rnn->num_directions();
    layer->batch_first = previous->batch_first;
    layers_.push_back(std::move(layer));
}

std::vector<std::string> Model::parameter_names() const {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < layers_.size(); ++i)
        for (const auto& s : layers_[i]->shapes()) names.push_back(std::to_string(i) + "." + s.first);
    return names;
}

namespace {
bool split_name(const std::string& full, std::size_t count, std::size_t& index, std::string& name) {
    const std::size_t dot = full.find('.');
    if (dot == std::string::npos || dot == 0 || dot > 6) return false;
    for (std::size_t k = 0; k < dot; ++k)
        if (full[k] < '0' || full[k] > '9') return false;
    index = std::stoul(full.substr(0, dot));
    name = full.substr(dot + 1);
    return index < count;
}
}  // namespace

std::vector<std::int64_t> Model::parameter_shape(const std::string& full) const {
    std::size_t i;
    std::string name;
    if (split_name(full, layers_.size(), i, name))
        for (const auto& s : layers_[i]->shapes())
            if (s.first == name) return s.second;
    throw std::invalid_argument("parameter: no parameter named '" + full + "'");
}

float* Model::parameter(const std::string& full) {
    std::size_t i;
    std::string name;
    float* p = split_name(full, layers_.size(), i, name) ? layers_[i]->data(name) : nullptr;
    if (!p) throw std::invalid_argument("parameter: no parameter named '" + full + "'");
    return p;
}

std::size_t Model::num_layers() const { return layers_.size(); }

void Model::check_ready() const {
    if (layers_.empty()) throw std::logic_error("Model: has no layers");
}

int Model::input_size() const {
    check_ready();
    const Layer& first = *layers_.front();
    switch (first.kind) {
        case Layer::Kind::Recurrent: return first.rnn->config().input_size;
        case Layer::Kind::Dense: return first.in;
        case Layer::Kind::Embedding: return 1;
        default: throw std::logic_error("Model: the first layer must be recurrent, Dense or Embedding");
    }
}

int Model::output_size() const {
    check_ready();
    int features = input_size();
    for (const auto& l : layers_) {
        if (l->kind == Layer::Kind::Recurrent)
            features = l->rnn->num_directions() * l->rnn->config().hidden_size;
        else if (l->kind == Layer::Kind::Dense || l->kind == Layer::Kind::Embedding)
            features = l->out;
    }
    return features;
}

bool Model::batch_first() const {
    for (const auto& l : layers_)
        if (l->kind == Layer::Kind::Recurrent) return l->batch_first;
    return false;
}

bool Model::sequence_output() const {
    for (const auto& l : layers_)
        if (l->kind == Layer::Kind::LastStep) return false;
    return true;
}

bool Model::takes_tokens() const { return !layers_.empty() && layers_.front()->kind == Layer::Kind::Embedding; }

const std::string& Model::metadata_json() const { return metadata_json_; }

double Model::metadata_number(const std::string& dotted_path) const {
    const json::Value root = json::parse(metadata_json_);
    const json::Value* v = &root;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = dotted_path.find('.', start);
        const std::string key = dotted_path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        v = &v->at(key, "metadata '" + dotted_path + "'");
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return v->as_number("metadata '" + dotted_path + "'");
}

std::size_t Model::output_elements(int T, int B) const {
    return (sequence_output() ? std::size_t(T) : 1) * std::size_t(B) * std::size_t(output_size());
}

// Model layout: data flows in the model's convention, (T, B, F) or (B, T, F); `rows` counts T*B (or B after a
// LastStep) and `features` the last axis. Recurrent layers and LastStep transpose batch-first data themselves.
void Model::predict(const float* x, int T, int B, float* y, const int* lengths) {
    check_ready();
    if (T < 1 || B < 1) throw std::invalid_argument("x: expected T >= 1 and B >= 1");
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > T)
                throw std::invalid_argument("lengths: expected values in 1.." + std::to_string(T));
    const bool bf = batch_first();
    std::size_t rows = std::size_t(T) * B;
    int features = input_size();
    std::vector<float> cur(x, x + rows * features), next, scratch;
    auto to_time_major = [&](std::vector<float>& v, int F) { swap_leading_axes(v, scratch, B, T, F); };
    auto to_batch_major = [&](std::vector<float>& v, int F) { swap_leading_axes(v, scratch, T, B, F); };
    for (const auto& lp : layers_) {
        Layer& l = *lp;
        switch (l.kind) {
            case Layer::Kind::Embedding: {
                const auto tokens = token_ids(cur.data(), rows, l.in, "x");
                next.resize(rows * l.out);
                embedding_forward<float>(next.data(), tokens.data(), l.params.data(), int(rows), l.in, l.out);
                features = l.out;
                break;
            }
            case Layer::Kind::Recurrent: {
                const auto& c = l.rnn->config();
                if (rows != std::size_t(T) * B)
                    throw std::logic_error("Model: a recurrent layer after LastStep is not supported");
                if (features != c.input_size)
                    throw std::logic_error("Model: layer input size mismatch");
                if (bf) to_time_major(cur, features);
                const int out = l.rnn->num_directions() * c.hidden_size;
                next.resize(rows * out);
                l.rnn->forward(next.data(), nullptr, nullptr, cur.data(), nullptr, nullptr, lengths, T, B, false);
                if (bf) to_batch_major(next, out);
                features = out;
                break;
            }
            case Layer::Kind::Dense:
                if (features != l.in) throw std::logic_error("Model: Dense input size mismatch");
                next.resize(rows * l.out);
                l.dense(next.data(), cur.data(), int(rows));
                features = l.out;
                break;
            case Layer::Kind::Dropout:
                continue;
            case Layer::Kind::LastStep:
                if (rows != std::size_t(T) * B) throw std::logic_error("Model: LastStep applied twice");
                if (l.batch_first) to_time_major(cur, features);
                next.resize(std::size_t(B) * features);
                last_step_forward<float>(next.data(), cur.data(), lengths, T, B, features, l.directions);
                rows = B;
                break;
        }
        cur.swap(next);
    }
    std::memcpy(y, cur.data(), sizeof(float) * cur.size());
}

Model::State Model::new_state(int batch) const {
    check_ready();
    if (batch < 1) throw std::invalid_argument("batch: expected a positive batch size");
    State s;
    s.batch = batch;
    for (const auto& l : layers_) {
        if (l->kind != Layer::Kind::Recurrent) continue;
        if (l->rnn->num_directions() != 1)
            throw std::logic_error("Model::new_state: a bidirectional layer cannot stream (it needs the future)");
        const auto& c = l->rnn->config();
        const std::size_t n = std::size_t(c.num_layers) * batch * c.hidden_size;
        s.h.emplace_back(n, 0.0f);
        s.c.emplace_back(c.kind == CellKind::LSTM ? n : 0, 0.0f);
    }
    return s;
}

void Model::step(const float* x_t, State& state, float* y_t) {
    check_ready();
    const int B = state.batch;
    std::size_t k = 0;
    for (const auto& l : layers_)
        k += l->kind == Layer::Kind::Recurrent;
    if (B < 1 || state.h.size() != k || state.c.size() != k)
        throw std::invalid_argument("state: not made by this model's new_state");
    int features = input_size();
    std::vector<float> cur(x_t, x_t + std::size_t(B) * features), next;
    std::size_t r = 0;
    for (const auto& lp : layers_) {
        Layer& l = *lp;
        switch (l.kind) {
            case Layer::Kind::Embedding: {
                const auto tokens = token_ids(cur.data(), std::size_t(B), l.in, "x_t");
                next.resize(std::size_t(B) * l.out);
                embedding_forward<float>(next.data(), tokens.data(), l.params.data(), B, l.in, l.out);
                features = l.out;
                break;
            }
            case Layer::Kind::Recurrent: {
                const auto& c = l.rnn->config();
                const std::size_t n = std::size_t(c.num_layers) * B * c.hidden_size;
                if (state.h[r].size() != n) throw std::invalid_argument("state: batch size or layout mismatch");
                next.resize(std::size_t(B) * c.hidden_size);
                float* cn = c.kind == CellKind::LSTM ? state.c[r].data() : nullptr;
                // h0 and h_n may share memory: the kernel copies h0 before it writes h_n.
                l.rnn->forward(next.data(), state.h[r].data(), cn, cur.data(), state.h[r].data(), cn, nullptr, 1, B,
                               false);
                features = c.hidden_size;
                ++r;
                break;
            }
            case Layer::Kind::Dense:
                next.resize(std::size_t(B) * l.out);
                l.dense(next.data(), cur.data(), B);
                features = l.out;
                break;
            case Layer::Kind::Dropout:
            case Layer::Kind::LastStep:  // the current step is the last one so far
                continue;
        }
        cur.swap(next);
    }
    std::memcpy(y_t, cur.data(), sizeof(float) * cur.size());
}

Model Model::load(const std::string& path) {
    TensorFile file = detail::read_tensor_file(path);
    auto fail = [&path](const std::string& why) -> void {
        throw std::invalid_argument("rnnkit model file '" + path + "': " + why);
    };
    auto kind = file.metadata.find("rnnkit.kind");
    if (kind == file.metadata.end() || kind->second != "model")
        fail("holds a '" + (kind == file.metadata.end() ? std::string("?") : kind->second) + "', not a model");
    auto arch = file.metadata.find("rnnkit.model");
    if (arch == file.metadata.end()) fail("no architecture (rnnkit.model) in its metadata");
    Model model;
    try {
        const json::Value root = json::parse(arch->second);
        const auto& layers = root.at("layers", "model").as_array("model.layers");
        if (layers.empty() || layers.size() > 10000) fail("the model has no layers or too many");
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const std::string where = "layer " + std::to_string(i);
            const std::string& cls = layers[i].at("class", where).as_string(where + ".class");
            const json::Value& c = layers[i].at("config", where);
            auto flag = [&](const char* key, bool fallback) {
                const json::Value* v = c.find(key);
                return v && !v->is_null() ? v->as_bool(where + "." + key) : fallback;
            };
            auto integer = [&](const char* key) {
                return int(c.at(key, where).as_int(where + "." + key, 1, 1 << 24));
            };
            if (cls == "LSTM" || cls == "GRU" || cls == "RNN") {
                LayerConfig lc;
                if (cls == "LSTM") lc.kind = CellKind::LSTM;
                else if (cls == "GRU") lc.kind = CellKind::GRU;
                else {
                    const std::string& nl = c.at("nonlinearity", where).as_string(where + ".nonlinearity");
                    if (nl != "tanh" && nl != "relu") fail(where + ": unknown nonlinearity '" + nl + "'");
                    lc.kind = nl == "tanh" ? CellKind::RNN_TANH : CellKind::RNN_RELU;
                }
                lc.input_size = integer("input_size");
                lc.hidden_size = integer("hidden_size");
                lc.num_layers = int(c.at("num_layers", where).as_int(where + ".num_layers", 1, 1024));
                lc.bias = flag("bias", true);
                lc.bidirectional = flag("bidirectional", false);
                lc.peephole = flag("peephole", false);
                lc.linear_before_reset = flag("linear_before_reset", true);
                lc.seed = seed_of(c);
                model.add_recurrent(lc, flag("batch_first", false));
            } else if (cls == "Dense") {
                const json::Value* act = c.find("activation");
                model.add_dense(integer("in_features"), integer("out_features"),
                                act ? parse_activation(*act) : Activation::None, flag("bias", true), seed_of(c));
            } else if (cls == "Embedding") {
                model.add_embedding(integer("num_embeddings"), integer("embedding_dim"), seed_of(c));
            } else if (cls == "Dropout") {
                model.add_dropout(c.at("p", where).as_number(where + ".p"));
            } else if (cls == "LastStep") {
                model.add_last_step();
                const json::Value* d = c.find("directions");
                if (d && !d->is_null() && d->as_int(where + ".directions", 1, 2) != model.layers_.back()->directions)
                    fail(where + ": LastStep directions do not match the recurrent layer before it");
            } else {
                fail(where + ": unsupported layer class '" + cls + "'");
            }
        }
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        if (what.rfind("rnnkit model file", 0) == 0) throw;
        fail("bad architecture: " + what);
    } catch (const std::logic_error& e) {
        fail(std::string("bad architecture: ") + e.what());
    }
    auto user = file.metadata.find("rnnkit.user");
    if (user != file.metadata.end()) model.metadata_json_ = user->second;

    // Parameters: every expected tensor present with its shape, nothing unexpected.
    const auto names = model.parameter_names();
    for (const auto& name : names) {
        auto it = file.tensors.find(name);
        if (it == file.tensors.end()) fail("missing tensor '" + name + "'");
        const Tensor& t = it->second;
        const auto shape = model.parameter_shape(name);
        if (t.shape != shape) fail("tensor '" + name + "' has the wrong shape");
        float* dst = model.parameter(name);
        std::size_t count = 1;
        for (auto s : shape) count *= std::size_t(s);
        if (t.dtype == "F32") {
            std::memcpy(dst, t.bytes.data(), count * sizeof(float));
        } else if (t.dtype == "F64") {
            for (std::size_t i = 0; i < count; ++i) {
                double v;
                std::memcpy(&v, t.bytes.data() + i * sizeof(double), sizeof(double));
                dst[i] = float(v);
            }
        } else {
            fail("tensor '" + name + "' has dtype " + t.dtype + ", expected F32 or F64");
        }
    }
    if (file.tensors.size() != names.size()) fail("the file holds tensors the architecture does not use");
    return model;
}

void Model::save(const std::string& path) const {
    check_ready();
    TensorFile file;
    std::string arch = "{\"layers\": [";
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const Layer& l = *layers_[i];
        std::string c;
        switch (l.kind) {
            case Layer::Kind::Recurrent: {
                const auto& lc = l.rnn->config();
                c = "\"input_size\": " + std::to_string(lc.input_size) +
                    ", \"hidden_size\": " + std::to_string(lc.hidden_size) +
                    ", \"num_layers\": " + std::to_string(lc.num_layers) + ", \"bias\": " + bool_text(lc.bias) +
                    ", \"batch_first\": " + bool_text(l.batch_first) + ", \"dropout\": " + std::to_string(lc.dropout) +
                    ", \"bidirectional\": " + bool_text(lc.bidirectional) +
                    ", \"recurrent_dropout\": " + std::to_string(lc.recurrent_dropout) +
                    ", \"seed\": " + std::to_string(lc.seed) + ", \"dtype\": \"float32\"";
                if (lc.kind == CellKind::LSTM) c += ", \"peephole\": " + bool_text(lc.peephole);
                if (lc.kind == CellKind::GRU) c += ", \"linear_before_reset\": " + bool_text(lc.linear_before_reset);
                if (lc.kind == CellKind::RNN_TANH || lc.kind == CellKind::RNN_RELU)
                    c += std::string(", \"nonlinearity\": ") + (lc.kind == CellKind::RNN_TANH ? "\"tanh\"" : "\"relu\"");
                break;
            }
            case Layer::Kind::Dense: {
                const char* act = activation_name(l.activation);
                c = "\"in_features\": " + std::to_string(l.in) + ", \"out_features\": " + std::to_string(l.out) +
                    ", \"activation\": " + (act ? json::quote(act) : std::string("null")) +
                    ", \"bias\": " + bool_text(l.bias) + ", \"seed\": " + std::to_string(l.seed) +
                    ", \"dtype\": \"float32\"";
                break;
            }
            case Layer::Kind::Embedding:
                c = "\"num_embeddings\": " + std::to_string(l.in) + ", \"embedding_dim\": " + std::to_string(l.out) +
                    ", \"seed\": " + std::to_string(l.seed) + ", \"dtype\": \"float32\"";
                break;
            case Layer::Kind::Dropout:
                c = "\"p\": " + std::to_string(l.p) + ", \"dtype\": \"float32\"";
                break;
            case Layer::Kind::LastStep:
                c = "\"directions\": " + std::to_string(l.directions) + ", \"batch_first\": " + bool_text(l.batch_first);
                break;
        }
        arch += std::string(i ? ", " : "") + "{\"class\": " + json::quote(l.class_name()) + ", \"config\": {" + c + "}}";
        for (const auto& s : l.shapes()) {
            Tensor t;
            t.dtype = "F32";
            t.shape = s.second;
            std::size_t count = 1;
            for (auto d : s.second) count *= std::size_t(d);
            const float* src = const_cast<Layer&>(l).data(s.first);
            t.bytes.resize(count * sizeof(float));
            std::memcpy(t.bytes.data(), src, t.bytes.size());
            file.tensors.emplace(std::to_string(i) + "." + s.first, std::move(t));
        }
    }
    arch += "]}";
    file.metadata["rnnkit.kind"] = "model";
    file.metadata["rnnkit.model"] = arch;
    file.metadata["rnnkit.user"] = metadata_json_;
    detail::write_tensor_file(path, std::move(file));
}

}  // namespace v0
}  // namespace rnnkit
