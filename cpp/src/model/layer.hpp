// The layers of a C++ Model behind one interface, and the registry of layer kinds by model-file class name.
// A new layer kind is one class implementing ModelLayer and one row in model/registry.cpp (its class name and
// how to build it from the JSON config Python's get_config() writes).
// Shapes: T = time steps, B = batch, F = features; data flows in the model's convention (see rnnkit/model.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/json.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// The activations passing through a Model: `data` holds rows x features values, rows = T*B for whole
// sequences ((T, B, F), or (B, T, F) when batch_first) or B after a LastStep / during a step.
struct Flow {
    std::vector<float> data, next, scratch;  // next/scratch: buffers a layer may use, swapped in by it
    int T = 1, B = 1;
    std::size_t rows = 0;
    int features = 0;
    bool batch_first = false;  // the model's convention
    bool per_step = false;     // streaming: one time step, rows = B
    bool has_time = true;      // false after LastStep
    const int* lengths = nullptr;
};

// One named parameter of a layer: torch name, shape, and its float32 values.
struct ParamRef {
    std::string name;
    std::vector<std::int64_t> shape;
    float* data;
};

class ModelLayer {
public:
    virtual ~ModelLayer() = default;
    virtual const char* class_name() const = 0;
    // The layer's config as Python's get_config() writes it (the members of the "config" object).
    virtual void write_config(json::Writer& w) const = 0;
    virtual std::vector<ParamRef> parameters() { return {}; }

    // Features out for `in` features in; throws std::logic_error when `in` does not fit the layer.
    virtual int output_features(int in) const { return in; }
    virtual bool is_recurrent() const { return false; }
    virtual bool batch_first() const { return false; }
    virtual bool reduces_time() const { return false; }   // LastStep: (T, B, F) -> (B, F)
    virtual bool takes_tokens() const { return false; }   // Embedding: integer ids in
    virtual int input_features() const { return 0; }      // the features the layer takes, 0 if any
    virtual int directions() const { return 1; }          // a recurrent layer's directions (LastStep reads it)

    // Whole sequences, in place on `flow`.
    virtual void forward(Flow& flow) = 0;
    // Streaming: state tensors for B streams (empty for stateless layers), and one step.
    virtual std::vector<std::vector<float>> new_state(int /*batch*/) const { return {}; }
    virtual void step(Flow& flow, std::vector<std::vector<float>>& /*state*/) { forward(flow); }
};

// A layer kind: the class name in model files and Python, and its builder from a JSON config. `before` is
// the model's layers so far (LastStep reads the recurrent layer before it; Embedding must come first).
struct LayerKind {
    const char* class_name;
    std::unique_ptr<ModelLayer> (*from_config)(const std::string& class_name, const json::Value& config,
                                               const std::string& where,
                                               const std::vector<std::unique_ptr<ModelLayer>>& before);
};
const std::vector<LayerKind>& layer_kinds();
const LayerKind& layer_kind(const std::string& class_name);  // throws std::invalid_argument

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
