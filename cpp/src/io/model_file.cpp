// The model file format: safetensors (io/tensor_file.cpp) with the parameters as "<layer>.<torch name>"
// tensors and metadata rnnkit.kind = "model", rnnkit.model = the architecture JSON ({"layers": [{"class",
// "config"}]}, the layer registry's classes, model/registry.cpp) and rnnkit.user = the user's metadata.
// A file is untrusted input: every check fails with std::invalid_argument naming the file.
#include <cstring>
#include <stdexcept>

#include "io/json.hpp"
#include "io/tensor_file.hpp"
#include "model/stack.hpp"
#include "rnnkit/model.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::Tensor;
using detail::TensorFile;

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
            const json::Value& config = layers[i].at("config", where);
            if (config.type != json::Value::Type::Object) fail(where + ".config: expected an object");
            model.layers_->add(cls, config);
        }
        model.output_size();  // every layer's input fits the one before it
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
    for (const auto& name : parameter_names()) {
        Tensor t;
        t.dtype = "F32";
        t.shape = parameter_shape(name);
        std::size_t count = 1;
        for (auto d : t.shape) count *= std::size_t(d);
        const float* src = const_cast<Model*>(this)->parameter(name);
        t.bytes.resize(count * sizeof(float));
        std::memcpy(t.bytes.data(), src, t.bytes.size());
        file.tensors.emplace(name, std::move(t));
    }
    file.metadata["rnnkit.kind"] = "model";
    file.metadata["rnnkit.model"] = config_json();
    file.metadata["rnnkit.user"] = metadata_json_;
    detail::write_tensor_file(path, std::move(file));
}

}  // namespace v0
}  // namespace rnnkit
