// Model: a Sequential for inference in C++ (builder, predict, streaming). The layers are ModelLayer objects
// (model/layer.hpp); the file format is io/model_file.cpp. See rnnkit/model.hpp.
#include "rnnkit/model.hpp"

#include <cstring>
#include <stdexcept>

#include "cpu/team.hpp"
#include "io/json.hpp"
#include "model/stack.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::Flow;
using detail::ModelLayer;

Model::Model() : layers_(std::make_unique<Layers>()) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

void Model::Layers::push(std::unique_ptr<ModelLayer> layer) {
    if (layer->takes_tokens() && !stack.empty())
        throw std::invalid_argument("Embedding: only supported as the first layer");
    if (layer->is_recurrent())
        for (const auto& l : stack)
            if (l->is_recurrent() && l->batch_first() != layer->batch_first())
                throw std::invalid_argument("batch_first: all recurrent layers of a model must agree");
    stack.push_back(std::move(layer));
}

void Model::Layers::add(const std::string& class_name, const json::Value& config) {
    if (config.type != json::Value::Type::Object)
        throw std::invalid_argument(class_name + ": config must be a JSON object");
    const std::string where = "layer " + std::to_string(stack.size()) + " (" + class_name + ")";
    push(detail::layer_kind(class_name).from_config(class_name, config, where, stack));
}

void Model::add_recurrent(const LayerConfig& config, bool batch_first) {
    layers_->push(detail::make_recurrent(config, batch_first));
}

void Model::add_dense(int in_features, int out_features, Activation activation, bool bias, std::uint64_t seed) {
    layers_->push(detail::make_dense(in_features, out_features, activation, bias, seed));
}

void Model::add_embedding(int num_embeddings, int embedding_dim, std::uint64_t seed) {
    layers_->push(detail::make_embedding(num_embeddings, embedding_dim, seed));
}

void Model::add_dropout(double p) { layers_->push(detail::make_dropout(p)); }

void Model::add_last_step() { layers_->push(detail::make_last_step(layers_->stack)); }

void Model::add_layer(const std::string& class_name, const std::string& config_json) {
    layers_->add(class_name, json::parse(config_json));
}

std::vector<std::string> Model::layer_classes() {
    std::vector<std::string> names;
    for (const auto& kind : detail::layer_kinds()) names.push_back(kind.class_name);
    return names;
}

std::string Model::config_json() const {
    json::Writer w;
    w.begin_object().key("layers").begin_array();
    for (const auto& l : layers_->stack) {
        w.begin_object().key("class").value(l->class_name()).key("config").begin_object();
        l->write_config(w);
        w.end_object().end_object();
    }
    w.end_array().end_object();
    return w.str();
}

std::vector<std::string> Model::parameter_names() const {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < layers_->stack.size(); ++i)
        for (const auto& p : layers_->stack[i]->parameters()) names.push_back(std::to_string(i) + "." + p.name);
    return names;
}

namespace {
// "<index>.<name>" -> the parameter, or nullptr.
const detail::ParamRef* lookup(const detail::LayerStack& stack, const std::string& full,
                               std::vector<detail::ParamRef>& holder) {
    const std::size_t dot = full.find('.');
    if (dot == std::string::npos || dot == 0 || dot > 6) return nullptr;
    for (std::size_t k = 0; k < dot; ++k)
        if (full[k] < '0' || full[k] > '9') return nullptr;
    const std::size_t index = std::stoul(full.substr(0, dot));
    if (index >= stack.size()) return nullptr;
    holder = stack[index]->parameters();
    for (const auto& p : holder)
        if (p.name == full.substr(dot + 1)) return &p;
    return nullptr;
}
}  // namespace

std::vector<std::int64_t> Model::parameter_shape(const std::string& full) const {
    std::vector<detail::ParamRef> holder;
    const detail::ParamRef* p = lookup(layers_->stack, full, holder);
    if (!p) throw std::invalid_argument("parameter: no parameter named '" + full + "'");
    return p->shape;
}

float* Model::parameter(const std::string& full) {
    std::vector<detail::ParamRef> holder;
    const detail::ParamRef* p = lookup(layers_->stack, full, holder);
    if (!p) throw std::invalid_argument("parameter: no parameter named '" + full + "'");
    return p->data;
}

std::size_t Model::num_layers() const { return layers_->stack.size(); }

void Model::check_ready() const {
    if (layers_->stack.empty()) throw std::logic_error("Model: has no layers");
}

int Model::input_size() const {
    check_ready();
    const int in = layers_->stack.front()->input_features();
    if (in < 1) throw std::logic_error("Model: the first layer must be recurrent, Dense or Embedding");
    return in;
}

int Model::output_size() const {
    int features = input_size();
    for (const auto& l : layers_->stack) features = l->output_features(features);
    return features;
}

bool Model::batch_first() const {
    for (const auto& l : layers_->stack)
        if (l->is_recurrent()) return l->batch_first();
    return false;
}

bool Model::sequence_output() const {
    for (const auto& l : layers_->stack)
        if (l->reduces_time()) return false;
    return true;
}

bool Model::takes_tokens() const { return !layers_->stack.empty() && layers_->stack.front()->takes_tokens(); }

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

// Data flows in the model's convention, (T, B, F) or (B, T, F); each layer transforms the Flow in place.
void Model::predict(const float* x, int T, int B, float* y, const int* lengths) {
    const detail::KernelThreads threads;
    check_ready();
    if (T < 1 || B < 1) throw std::invalid_argument("x: expected T >= 1 and B >= 1");
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 0 || lengths[b] > T)
                throw std::invalid_argument("lengths: expected values in 0.." + std::to_string(T));
    Flow f;
    f.T = T;
    f.B = B;
    f.rows = std::size_t(T) * B;
    f.features = input_size();
    f.batch_first = batch_first();
    f.lengths = lengths;
    f.data.assign(x, x + f.rows * f.features);
    for (const auto& l : layers_->stack) l->forward(f);
    std::memcpy(y, f.data.data(), sizeof(float) * f.data.size());
}

Model::State Model::new_state(int batch) const {
    check_ready();
    if (batch < 1) throw std::invalid_argument("batch: expected a positive batch size");
    State s;
    s.batch = batch;
    for (const auto& l : layers_->stack) s.layers.push_back(l->new_state(batch));
    return s;
}

void Model::step(const float* x_t, State& state, float* y_t) {
    const detail::KernelThreads threads;
    check_ready();
    const int B = state.batch;
    if (B < 1 || state.layers.size() != layers_->stack.size())
        throw std::invalid_argument("state: not made by this model's new_state");
    Flow f;
    f.B = B;
    f.rows = std::size_t(B);
    f.features = input_size();
    f.per_step = true;
    f.data.assign(x_t, x_t + std::size_t(B) * f.features);
    for (std::size_t i = 0; i < layers_->stack.size(); ++i) layers_->stack[i]->step(f, state.layers[i]);
    std::memcpy(y_t, f.data.data(), sizeof(float) * f.data.size());
}

}  // namespace v0
}  // namespace rnnkit
