// The layer kinds a C++ Model knows, by model-file class name (model/layer.hpp), and the config readers the
// layers share. The recurrent classes come from the cell registry: every cell's layer_class is a row.
#include <cmath>
#include <stdexcept>

#include "model/layers.hpp"
#include "rnnkit/cells.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

const std::vector<LayerKind>& layer_kinds() {
    static const std::vector<LayerKind> kinds = [] {
        std::vector<LayerKind> k{{"Dense", &dense_from_config},
                                 {"Embedding", &embedding_from_config},
                                 {"Dropout", &dropout_from_config},
                                 {"LastStep", &last_step_from_config}};
        for (const CellInfo* cell : registered_cells()) {
            bool seen = false;
            for (const auto& row : k) seen = seen || std::string(row.class_name) == cell->layer_class;
            if (!seen) k.push_back({cell->layer_class, &recurrent_from_config});
        }
        return k;
    }();
    return kinds;
}

const LayerKind& layer_kind(const std::string& class_name) {
    std::string known;
    for (const auto& row : layer_kinds()) {
        if (class_name == row.class_name) return row;
        known += std::string(known.empty() ? "" : ", ") + row.class_name;
    }
    throw std::invalid_argument("unsupported layer class '" + class_name + "' (known: " + known + ")");
}

bool config_flag(const json::Value& c, const char* key, bool fallback, const std::string& where) {
    const json::Value* v = c.find(key);
    return v && !v->is_null() ? v->as_bool(where + "." + key) : fallback;
}

int config_int(const json::Value& c, const char* key, int lo, int hi, const std::string& where) {
    return int(c.at(key, where).as_int(where + "." + key, lo, hi));
}

double config_number(const json::Value& c, const char* key, double fallback, const std::string& where) {
    const json::Value* v = c.find(key);
    return v && !v->is_null() ? v->as_number(where + "." + key) : fallback;
}

std::uint64_t config_seed(const json::Value& c) {
    const json::Value* s = c.find("seed");
    if (!s || s->type != json::Value::Type::Number || !(s->number >= 0) || s->number >= 1.8e19) return 0;
    return std::uint64_t(s->number);
}

void KeepsUnknownKeys::keep_unknown(const json::Value& config, std::initializer_list<const char*> known) {
    for (const auto& kv : config.object) {
        bool is_known = false;
        for (const char* k : known) is_known = is_known || kv.first == k;
        if (!is_known) unknown_.emplace_back(kv.first, json::dump(kv.second));
    }
}

void KeepsUnknownKeys::write_unknown(json::Writer& w) const {
    for (const auto& kv : unknown_) w.key(kv.first).raw(kv.second);
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
