// A Model's feed-forward layers: Dense, Embedding, Dropout (identity at inference), LastStep.
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "model/layers.hpp"
#include "random.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

namespace {

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

// y = act(x W^T + b): torch.nn.Linear's parameters, initialised U(-1/sqrt(in), 1/sqrt(in)) like torch.
class DenseLayer : public ModelLayer, public KeepsUnknownKeys {
public:
    DenseLayer(int in, int out, Activation activation, bool bias, std::uint64_t seed)
        : in_(in), out_(out), activation_(activation), bias_(bias), seed_(seed),
          params_(std::size_t(out) * in + (bias ? out : 0)) {
        if (in < 1 || out < 1) throw std::invalid_argument("Dense: in_features and out_features must be positive");
        std::mt19937_64 engine(mix(seed, 7));
        const double bound = 1.0 / std::sqrt(double(in));
        for (auto& v : params_) v = float(-bound + 2 * bound * uniform01(engine));
    }
    const char* class_name() const override { return "Dense"; }
    int input_features() const override { return in_; }
    void write_config(json::Writer& w) const override {
        w.key("in_features").value(in_).key("out_features").value(out_);
        w.key("activation").value(activation_ == Activation::None ? nullptr : to_string(activation_));
        w.key("bias").value(bias_).key("seed").value(seed_).key("dtype").value("float32");
        write_unknown(w);
    }
    std::vector<ParamRef> parameters() override {
        std::vector<ParamRef> p{{"weight", {out_, in_}, params_.data()}};
        if (bias_) p.push_back({"bias", {out_}, params_.data() + std::size_t(out_) * in_});
        return p;
    }
    int output_features(int in) const override {
        if (in != in_) throw std::logic_error("Model: Dense input size mismatch");
        return out_;
    }
    void forward(Flow& f) override {
        output_features(f.features);
        f.next.resize(f.rows * out_);
        dense_forward<float>(f.next.data(), f.data.data(), params_.data(),
                             bias_ ? params_.data() + std::size_t(out_) * in_ : nullptr, int(f.rows), in_, out_, activation_);
        f.data.swap(f.next);
        f.features = out_;
    }

private:
    int in_, out_;
    Activation activation_;
    bool bias_;
    std::uint64_t seed_;
    std::vector<float> params_;  // weight [out, in], then bias [out]
};

// Token ids -> vectors. `weight` [V, D] ~ N(0, 1), like torch.nn.Embedding and rnnkit.Embedding.
class EmbeddingLayer : public ModelLayer, public KeepsUnknownKeys {
public:
    EmbeddingLayer(int vocabulary, int dim, std::uint64_t seed)
        : vocabulary_(vocabulary), dim_(dim), seed_(seed), weight_(std::size_t(vocabulary) * dim) {
        if (vocabulary < 1 || dim < 1)
            throw std::invalid_argument("Embedding: num_embeddings and embedding_dim must be positive");
        std::mt19937_64 engine(mix(seed, 7));
        for (std::size_t i = 0; i < weight_.size(); i += 2) {  // Box-Muller: two normals per two uniforms
            const double u1 = 1.0 - uniform01(engine), u2 = uniform01(engine);
            const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 6.283185307179586 * u2;
            weight_[i] = float(radius * std::cos(angle));
            if (i + 1 < weight_.size()) weight_[i + 1] = float(radius * std::sin(angle));
        }
    }
    const char* class_name() const override { return "Embedding"; }
    bool takes_tokens() const override { return true; }
    int input_features() const override { return 1; }
    void write_config(json::Writer& w) const override {
        w.key("num_embeddings").value(vocabulary_).key("embedding_dim").value(dim_);
        w.key("seed").value(seed_).key("dtype").value("float32");
        write_unknown(w);
    }
    std::vector<ParamRef> parameters() override { return {{"weight", {vocabulary_, dim_}, weight_.data()}}; }
    int output_features(int) const override { return dim_; }
    void forward(Flow& f) override {
        const auto tokens = token_ids(f.data.data(), f.rows, vocabulary_, f.per_step ? "x_t" : "x");
        f.next.resize(f.rows * dim_);
        embedding_forward<float>(f.next.data(), tokens.data(), weight_.data(), int(f.rows), vocabulary_, dim_);
        f.data.swap(f.next);
        f.features = dim_;
    }

private:
    int vocabulary_, dim_;
    std::uint64_t seed_;
    std::vector<float> weight_;
};

class DropoutLayer : public ModelLayer, public KeepsUnknownKeys {
public:
    explicit DropoutLayer(double p) : p_(p) {
        if (!(p >= 0 && p < 1)) throw std::invalid_argument("Dropout: p must be in [0, 1)");
    }
    const char* class_name() const override { return "Dropout"; }
    void write_config(json::Writer& w) const override {
        w.key("p").value(p_).key("dtype").value("float32");
        write_unknown(w);
    }
    void forward(Flow&) override {}  // identity at inference

private:
    double p_;
};

// (T, B, F) -> (B, F): each sequence's last valid step; streaming: the current step is the last one so far.
class LastStepLayer : public ModelLayer, public KeepsUnknownKeys {
public:
    LastStepLayer(int directions, bool batch_first) : directions_(directions), batch_first_(batch_first) {}
    const char* class_name() const override { return "LastStep"; }
    bool reduces_time() const override { return true; }
    int directions() const override { return directions_; }
    void write_config(json::Writer& w) const override {
        w.key("directions").value(directions_).key("batch_first").value(batch_first_);
        write_unknown(w);
    }
    void forward(Flow& f) override {
        if (!f.has_time) throw std::logic_error("Model: LastStep applied twice");
        const int F = f.features;
        if (batch_first_) {  // (B, T, F) -> (T, B, F)
            f.scratch.resize(f.data.size());
            for (int b = 0; b < f.B; ++b)
                for (int t = 0; t < f.T; ++t)
                    std::memcpy(&f.scratch[(std::size_t(t) * f.B + b) * F], &f.data[(std::size_t(b) * f.T + t) * F],
                                sizeof(float) * F);
            f.data.swap(f.scratch);
        }
        f.next.resize(std::size_t(f.B) * F);
        last_step_forward<float>(f.next.data(), f.data.data(), f.lengths, f.T, f.B, F, directions_);
        f.data.swap(f.next);
        f.rows = std::size_t(f.B);
        f.has_time = false;
    }
    void step(Flow&, std::vector<std::vector<float>>&) override {}

private:
    int directions_;
    bool batch_first_;
};

const ModelLayer* last_recurrent(const LayerStack& before) {
    const ModelLayer* previous = nullptr;
    for (const auto& l : before)
        if (l->is_recurrent()) previous = l.get();
    return previous;
}

}  // namespace

std::unique_ptr<ModelLayer> make_dense(int in, int out, Activation activation, bool bias, std::uint64_t seed) {
    return std::make_unique<DenseLayer>(in, out, activation, bias, seed);
}

std::unique_ptr<ModelLayer> make_embedding(int vocabulary, int dim, std::uint64_t seed) {
    return std::make_unique<EmbeddingLayer>(vocabulary, dim, seed);
}

std::unique_ptr<ModelLayer> make_dropout(double p) { return std::make_unique<DropoutLayer>(p); }

std::unique_ptr<ModelLayer> make_last_step(const LayerStack& before) {
    const ModelLayer* previous = last_recurrent(before);
    if (!previous) throw std::invalid_argument("LastStep: needs a recurrent layer before it");
    return std::make_unique<LastStepLayer>(previous->directions(), previous->batch_first());
}

std::unique_ptr<ModelLayer> dense_from_config(const std::string&, const json::Value& c, const std::string& where,
                                              const LayerStack&) {
    const json::Value* act = c.find("activation");
    const Activation activation =
        act && !act->is_null() ? parse_activation(act->as_string(where + ".activation")) : Activation::None;
    auto layer = std::make_unique<DenseLayer>(config_int(c, "in_features", 1, 1 << 24, where),
                                              config_int(c, "out_features", 1, 1 << 24, where), activation,
                                              config_flag(c, "bias", true, where), config_seed(c));
    layer->keep_unknown(c, {"in_features", "out_features", "activation", "bias", "seed", "dtype"});
    return layer;
}

std::unique_ptr<ModelLayer> embedding_from_config(const std::string&, const json::Value& c, const std::string& where,
                                                  const LayerStack& before) {
    if (!before.empty()) throw std::invalid_argument("Embedding: only supported as the first layer");
    auto layer = std::make_unique<EmbeddingLayer>(config_int(c, "num_embeddings", 1, 1 << 24, where),
                                                  config_int(c, "embedding_dim", 1, 1 << 24, where), config_seed(c));
    layer->keep_unknown(c, {"num_embeddings", "embedding_dim", "seed", "dtype"});
    return layer;
}

std::unique_ptr<ModelLayer> dropout_from_config(const std::string&, const json::Value& c, const std::string& where,
                                                const LayerStack&) {
    auto layer = std::make_unique<DropoutLayer>(c.at("p", where).as_number(where + ".p"));
    layer->keep_unknown(c, {"p", "dtype"});
    return layer;
}

std::unique_ptr<ModelLayer> last_step_from_config(const std::string&, const json::Value& c, const std::string& where,
                                                  const LayerStack& before) {
    auto made = make_last_step(before);
    const json::Value* d = c.find("directions");
    if (d && !d->is_null() && d->as_int(where + ".directions", 1, 2) != made->directions())
        throw std::invalid_argument(where + ": LastStep directions do not match the recurrent layer before it");
    static_cast<LastStepLayer&>(*made).keep_unknown(c, {"directions", "batch_first"});
    return made;
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
