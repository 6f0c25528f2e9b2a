// A Model's layer stack (the private Model::Layers), shared by the Model (model/model.cpp) and its file format
// (io/model_file.cpp), so that loading a file adds each layer from the JSON config it has already parsed.
#pragma once

#include <memory>
#include <string>

#include "io/json.hpp"
#include "model/layers.hpp"
#include "rnnkit/model.hpp"

namespace rnnkit {
inline namespace v0 {

struct Model::Layers {
    detail::LayerStack stack;

    // Appends a layer; an Embedding only first, recurrent layers agreeing on batch_first.
    void push(std::unique_ptr<detail::ModelLayer> layer);
    // Appends a layer of a registered kind from its JSON config (an object; checked).
    void add(const std::string& class_name, const json::Value& config);
};

}  // namespace v0
}  // namespace rnnkit
