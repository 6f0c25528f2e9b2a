// The built-in layer kinds of a C++ Model (model/layer.hpp): constructors for Model's builder API and their
// JSON builders, registered in model/registry.cpp.
#pragma once

#include <memory>

#include "model/layer.hpp"
#include "rnnkit/config.hpp"
#include "rnnkit/layers.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

using LayerStack = std::vector<std::unique_ptr<ModelLayer>>;

std::unique_ptr<ModelLayer> make_recurrent(const LayerConfig& config, bool batch_first);
std::unique_ptr<ModelLayer> make_dense(int in_features, int out_features, Activation activation, bool bias,
                                       std::uint64_t seed);
std::unique_ptr<ModelLayer> make_embedding(int num_embeddings, int embedding_dim, std::uint64_t seed);
std::unique_ptr<ModelLayer> make_dropout(double p);
std::unique_ptr<ModelLayer> make_last_step(const LayerStack& before);

std::unique_ptr<ModelLayer> recurrent_from_config(const std::string& class_name, const json::Value& c, const std::string& where,
                                                  const LayerStack& before);
std::unique_ptr<ModelLayer> dense_from_config(const std::string& class_name, const json::Value& c, const std::string& where,
                                                  const LayerStack& before);
std::unique_ptr<ModelLayer> embedding_from_config(const std::string& class_name, const json::Value& c, const std::string& where,
                                                  const LayerStack& before);
std::unique_ptr<ModelLayer> dropout_from_config(const std::string& class_name, const json::Value& c, const std::string& where,
                                                  const LayerStack& before);
std::unique_ptr<ModelLayer> last_step_from_config(const std::string& class_name, const json::Value& c, const std::string& where,
                                                  const LayerStack& before);

// Reading configs: a key's value or a fallback when absent or null; integers in [lo, hi]; a seed (0 when
// absent or not a non-negative number).
bool config_flag(const json::Value& c, const char* key, bool fallback, const std::string& where);
int config_int(const json::Value& c, const char* key, int lo, int hi, const std::string& where);
std::uint64_t config_seed(const json::Value& c);
double config_number(const json::Value& c, const char* key, double fallback, const std::string& where);

// Config keys a C++ layer does not use (l1, l2, kernel_init, ...) are kept and written back unchanged, so a
// file saved by C++ gives Python the config it was loaded from.
class KeepsUnknownKeys {
public:
    void keep_unknown(const json::Value& config, std::initializer_list<const char*> known);
    void write_unknown(json::Writer& w) const;

private:
    std::vector<std::pair<std::string, std::string>> unknown_;  // key, JSON text
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
