// A trained model for inference in C++ programs: load the .safetensors file Python's `model.save` writes,
// predict whole sequences, or stream one time step at a time with explicit state.
// Shape legend: see rnnkit/config.hpp. Model calls take inputs first, then outputs
// (`model.step(x_t, state, y_t)`), unlike the kernel-level functions, which put outputs first. Inputs follow the model's convention: (T, B, I), or (B, T, I) when its
// recurrent layers were built with batch_first=True. Every error is an exception with a clear message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rnnkit/config.hpp"
#include "rnnkit/layers.hpp"

namespace rnnkit {
inline namespace v0 {

class Model {
public:
    // Streaming state for a batch of B independent streams: per layer of the model, that layer's state
    // tensors (none for stateless layers; a recurrent layer has its num_states tensors [L*D, B, width], h first:
    // an LSTM's h and c, and with full_gate_recurrence its gate state [L*D, B, 3H]; h is proj_size wide with a
    // projection).
    struct State {
        int batch = 0;
        std::vector<std::vector<std::vector<float>>> layers;
    };

    Model();
    ~Model();
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;

    // Reads a model file; throws std::invalid_argument for a missing, truncated, corrupted or unsupported file
    // (every length and offset is checked; the file's CRC-32 must match). float64 models are converted to float32.
    static Model load(const std::string& path);
    // Writes a file that `rnnkit.load` (Python) and Model::load read; atomic (temporary file + rename).
    void save(const std::string& path) const;

    // Building a model in C++ (parameters initialised like torch from each config's seed); mirrors
    // rnnkit.Sequential. Recurrent layers must come with batch_first consistent across the model.
    void add_recurrent(const LayerConfig& config, bool batch_first = false);
    void add_dense(int in_features, int out_features, Activation activation = Activation::None, bool bias = true,
                   std::uint64_t seed = 0);
    void add_embedding(int num_embeddings, int embedding_dim, std::uint64_t seed = 0);
    void add_dropout(double p);   // identity at inference
    void add_last_step();         // (T, B, F) -> (B, F): each sequence's last valid step
    // Any registered layer kind by its model-file class name ("LSTM", "Dense", ...) and its JSON config (the
    // object Python's get_config() returns); throws std::invalid_argument for an unknown class or bad config.
    void add_layer(const std::string& class_name, const std::string& config_json);
    // The class names add_layer (and a model file) accepts: every registered layer kind.
    static std::vector<std::string> layer_classes();
    // The model's architecture as the JSON a model file stores: {"layers": [{"class": ..., "config": ...}]}.
    std::string config_json() const;

    // Parameters by name ("<layer index>.<torch name>"), their shapes, and mutable data.
    std::vector<std::string> parameter_names() const;
    std::vector<std::int64_t> parameter_shape(const std::string& name) const;
    float* parameter(const std::string& name);

    std::size_t num_layers() const;
    int input_size() const;          // features per step (1 for token ids with an Embedding first)
    int output_size() const;         // features of the last layer
    bool batch_first() const;
    bool sequence_output() const;    // true: output (T, B, O) [or (B, T, O)]; false: (B, O) after LastStep
    bool takes_tokens() const;       // true when the first layer is an Embedding: x holds token ids
    const std::string& metadata_json() const;  // the JSON the Python side stored with save(metadata=...)
    // A number inside that JSON by dotted path, e.g. "forecaster.lookback"; throws if absent or not a number.
    double metadata_number(const std::string& dotted_path) const;

    // Whole sequences. x: (T, B, I) or (B, T, I) as above (token ids as floats for an Embedding first);
    // lengths: B values in 0..T or nullptr (0: an empty sequence, zeros out; a LastStep needs 1..T). y: (T, B, O) / (B, T, O), or (B, O) after a LastStep.
    void predict(const float* x, int T, int B, float* y, const int* lengths = nullptr);
    std::size_t output_elements(int T, int B) const;

    // Streaming: feeding a sequence one step at a time gives the same outputs as predict on the whole
    // sequence (the output after step t is what predict returns for the sequence cut at t).
    // x_t: (B, I); y_t: (B, O). Needs unidirectional recurrent layers.
    State new_state(int batch) const;
    void step(const float* x_t, State& state, float* y_t);

private:
    struct Layers;  // the layer stack (model/layer.hpp), kept out of this header
    std::unique_ptr<Layers> layers_;
    std::string metadata_json_ = "{}";
    void check_ready() const;
};

}  // namespace v0
}  // namespace rnnkit
