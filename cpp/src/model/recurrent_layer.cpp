// A Model's recurrent layer: a Recurrent<float> stack of any registered cell (rnnkit/cells.hpp).
#include <cstring>
#include <stdexcept>

#include "model/layers.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/recurrent.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

namespace {

// v: [A, Bd, F] -> [Bd, A, F] (batch-first <-> time-major).
void swap_leading_axes(std::vector<float>& v, std::vector<float>& scratch, int A, int Bd, int F) {
    scratch.resize(v.size());
    for (int a = 0; a < A; ++a)
        for (int b = 0; b < Bd; ++b)
            std::memcpy(&scratch[(std::size_t(b) * A + a) * F], &v[(std::size_t(a) * Bd + b) * F], sizeof(float) * F);
    v.swap(scratch);
}

// A bidirectional layer's outputs: concatenated (the core's layout) or merged into H features (Keras's merge modes).
enum class Merge { Concat, Sum, Mul, Ave };

Merge parse_merge(const json::Value* v, const std::string& where) {
    if (!v) return Merge::Concat;
    if (v->is_null())
        throw std::invalid_argument(where + ".merge_mode: None (the two directions apart) cannot feed a Model's next "
                                    "layer; use 'concat', 'sum', 'mul' or 'ave'");
    const std::string m = v->as_string(where + ".merge_mode");
    if (m == "concat") return Merge::Concat;
    if (m == "sum") return Merge::Sum;
    if (m == "mul") return Merge::Mul;
    if (m == "ave") return Merge::Ave;
    throw std::invalid_argument(where + ".merge_mode: expected 'concat', 'sum', 'mul', 'ave', got '" + m + "'");
}

const char* to_string(Merge m) {
    switch (m) {
        case Merge::Sum: return "sum";
        case Merge::Mul: return "mul";
        case Merge::Ave: return "ave";
        default: return "concat";
    }
}

void write_nonlinearity(json::Writer& w, const Nonlinearity& a) {
    const std::vector<double> params = parameters_of(a);
    if (params.empty()) {
        w.value(to_string(a.kind));
        return;
    }
    w.begin_array().value(to_string(a.kind));
    for (double p : params) w.value(p);
    w.end_array();
}

Nonlinearity read_nonlinearity(const json::Value& v, const std::string& what) {
    if (v.type != json::Value::Type::Array) return parse_nonlinearity(v.as_string(what), what.c_str());
    const auto& items = v.as_array(what);
    if (items.empty()) throw std::invalid_argument(what + ": expected a name or [name, parameters...]");
    std::vector<double> params;
    for (std::size_t i = 1; i < items.size(); ++i) params.push_back(items[i].as_number(what));
    return make_nonlinearity(items[0].as_string(what), params, what.c_str());
}

class RecurrentLayer : public ModelLayer, public KeepsUnknownKeys {
public:
    RecurrentLayer(const LayerConfig& config, bool batch_first, Merge merge = Merge::Concat)
        : rnn_(config), batch_first_(batch_first), merge_(config.bidirectional ? merge : Merge::Concat) {}

    const char* class_name() const override { return cell_info(rnn_.config().kind).layer_class; }
    bool is_recurrent() const override { return true; }
    bool batch_first() const override { return batch_first_; }
    int input_features() const override { return rnn_.config().input_size; }
    int directions() const override { return merge_ == Merge::Concat ? rnn_.num_directions() : 1; }
    int width() const { return rnn_.state_size(0); }  // features of h per direction

    void write_config(json::Writer& w) const override {
        const LayerConfig& c = rnn_.config();
        const CellInfo& cell = cell_info(c.kind);
        w.key("input_size").value(c.input_size).key("hidden_size").value(c.hidden_size);
        w.key("num_layers").value(c.num_layers).key("bias").value(c.bias).key("batch_first").value(batch_first_);
        w.key("dropout").value(c.dropout).key("bidirectional").value(c.bidirectional);
        if (std::string(cell.recurrence) != "none") w.key("recurrent_dropout").value(c.recurrent_dropout);
        w.key("seed").value(std::uint64_t(c.seed));
        w.key("dtype").value("float32");
        for (const std::string& option : cell.options) {
            if (option == "peephole") w.key("peephole").value(c.peephole);
            if (option == "linear_before_reset") w.key("linear_before_reset").value(c.linear_before_reset);
            if (option == "activation") write_nonlinearity(w.key("activation"), c.activation);
            if (option == "nonlinearity") write_nonlinearity(w.key("nonlinearity"), c.activation);
            if (option == "recurrent_activation") write_nonlinearity(w.key("recurrent_activation"), c.recurrent_activation);
            if (option == "cell_clip") c.cell_clip > 0 ? w.key("cell_clip").value(c.cell_clip) : w.key("cell_clip").value(nullptr);
            if (option == "recurrent_clip")
                c.recurrent_clip > 0 ? w.key("recurrent_clip").value(c.recurrent_clip) : w.key("recurrent_clip").value(nullptr);
            if (option == "input_gate") w.key("input_gate").value(c.input_gate);
            if (option == "forget_gate") w.key("forget_gate").value(c.forget_gate);
            if (option == "output_gate") w.key("output_gate").value(c.output_gate);
            if (option == "input_activation") w.key("input_activation").value(c.input_activation);
            if (option == "output_activation") w.key("output_activation").value(c.output_activation);
            if (option == "coupled_input_forget") w.key("coupled_input_forget").value(c.coupled_input_forget);
            if (option == "zoneout") w.key("zoneout").value(c.zoneout);
            if (option == "zoneout_cell") w.key("zoneout_cell").value(c.zoneout_cell);
            if (option == "proj_size") w.key("proj_size").value(c.proj_size);
            if (option == "layer_norm") w.key("layer_norm").value(c.layer_norm);
            if (option == "full_gate_recurrence") w.key("full_gate_recurrence").value(c.full_gate_recurrence);
            if (option == "num_heads") w.key("num_heads").value(c.num_heads);
        }
        if (cell.nonlinearity) w.key("nonlinearity").value(cell.nonlinearity);
        w.key("merge_mode").value(to_string(merge_));
        write_unknown(w);
    }

    std::vector<ParamRef> parameters() override {
        std::vector<ParamRef> out;
        for (const auto& info : rnn_.parameters()) out.push_back({info.name, info.shape, rnn_.param_data() + info.offset});
        return out;
    }

    int output_features(int in) const override {
        if (in != rnn_.config().input_size)
            throw std::logic_error("Model: layer input size mismatch (" + std::string(class_name()) + " takes " +
                                   std::to_string(rnn_.config().input_size) + " features, gets " + std::to_string(in) + ")");
        return directions() * width();
    }

    // y [rows, 2H] concatenated -> [rows, H] merged, in place
    void merge(std::vector<float>& y, std::size_t rows) const {
        if (merge_ == Merge::Concat) return;
        const int H = width();
        for (std::size_t r = 0; r < rows; ++r) {
            const float* in = &y[r * 2 * H];
            float* out = &y[r * H];
            for (int j = 0; j < H; ++j) {
                const float a = in[j], b = in[H + j];
                out[j] = merge_ == Merge::Sum ? a + b : merge_ == Merge::Mul ? a * b : 0.5f * (a + b);
            }
        }
        y.resize(rows * H);
    }

    void forward(Flow& f) override {
        if (!f.has_time) throw std::logic_error("Model: a recurrent layer after LastStep is not supported");
        const int out = output_features(f.features);
        if (f.batch_first) swap_leading_axes(f.data, f.scratch, f.B, f.T, f.features);
        f.next.resize(std::size_t(f.T) * f.B * rnn_.output_size());
        rnn_.forward(f.next.data(), nullptr, f.data.data(), nullptr, f.lengths, f.T, f.B, false);
        merge(f.next, std::size_t(f.T) * f.B);
        if (f.batch_first) swap_leading_axes(f.next, f.scratch, f.T, f.B, out);
        f.data.swap(f.next);
        f.features = out;
    }

    std::vector<std::vector<float>> new_state(int batch) const override {
        if (rnn_.num_directions() != 1)
            throw std::logic_error("Model::new_state: a bidirectional layer cannot stream (it needs the future)");
        const auto& c = rnn_.config();
        std::vector<std::vector<float>> states;
        for (int k = 0; k < rnn_.num_states(); ++k)
            states.emplace_back(std::size_t(c.num_layers) * batch * rnn_.state_size(k), 0.0f);
        return states;
    }

    void step(Flow& f, std::vector<std::vector<float>>& state) override {
        const auto& c = rnn_.config();
        if (state.size() != std::size_t(rnn_.num_states())) throw std::invalid_argument("state: layout mismatch");
        float* states[kMaxStates] = {};
        for (std::size_t k = 0; k < state.size(); ++k) {
            if (state[k].size() != std::size_t(c.num_layers) * f.B * rnn_.state_size(int(k)))
                throw std::invalid_argument("state: batch size or layout mismatch");
            states[k] = state[k].data();
        }
        const int out = output_features(f.features);
        f.next.resize(std::size_t(f.B) * out);
        // initial and final states share memory: a driver copies the initial state before it writes the final
        rnn_.forward(f.next.data(), states, f.data.data(), states, nullptr, 1, f.B, false);
        f.data.swap(f.next);
        f.features = out;
    }

private:
    Recurrent<float> rnn_;
    bool batch_first_;
    Merge merge_;
};

}  // namespace

std::unique_ptr<ModelLayer> make_recurrent(const LayerConfig& config, bool batch_first) {
    LayerConfig c = config;
    c.cell = false;
    return std::make_unique<RecurrentLayer>(c, batch_first);
}

std::unique_ptr<ModelLayer> recurrent_from_config(const std::string& cls, const json::Value& c,
                                                  const std::string& where, const LayerStack& /*before*/) {
    LayerConfig lc;
    // The cell kind: the registry row of this class (RNN: the one of its nonlinearity, torch's tanh and relu
    // rows first, else the row that takes any activation).
    const json::Value* nl = c.find("nonlinearity");
    const bool named = nl && !nl->is_null() && nl->type != json::Value::Type::Array;
    const std::string nonlinearity = named ? nl->as_string(where + ".nonlinearity") : "";
    const CellInfo* chosen = nullptr;
    for (const CellInfo* cell : registered_cells()) {
        if (cls != cell->layer_class) continue;
        if (cell->nonlinearity) {
            if ((nl && !named) || (nonlinearity.empty() ? "tanh" : nonlinearity) != cell->nonlinearity) continue;
        } else if (chosen) {
            continue;  // a fixed-nonlinearity row matched already
        }
        if (!chosen || !chosen->nonlinearity) chosen = cell;
    }
    if (!chosen) throw std::invalid_argument(where + ": unknown layer class '" + cls + "'");
    lc.kind = chosen->kind;
    auto has = [chosen](const char* option) {
        for (const std::string& o : chosen->options)
            if (o == option) return true;
        return false;
    };
    if (nl && !nl->is_null() && has("nonlinearity")) lc.activation = read_nonlinearity(*nl, where + ".nonlinearity");
    if (const json::Value* v = c.find("activation"); v && !v->is_null())
        lc.activation = read_nonlinearity(*v, where + ".activation");
    if (const json::Value* v = c.find("recurrent_activation"); v && !v->is_null())
        lc.recurrent_activation = read_nonlinearity(*v, where + ".recurrent_activation");
    lc.cell_clip = config_number(c, "cell_clip", 0.0, where);
    lc.recurrent_clip = config_number(c, "recurrent_clip", 0.0, where);
    lc.input_gate = config_flag(c, "input_gate", true, where);
    lc.forget_gate = config_flag(c, "forget_gate", true, where);
    lc.output_gate = config_flag(c, "output_gate", true, where);
    lc.input_activation = config_flag(c, "input_activation", true, where);
    lc.output_activation = config_flag(c, "output_activation", true, where);
    lc.coupled_input_forget = config_flag(c, "coupled_input_forget", false, where);
    lc.zoneout = config_number(c, "zoneout", 0.0, where);
    lc.zoneout_cell = config_number(c, "zoneout_cell", 0.0, where);
    lc.layer_norm = config_flag(c, "layer_norm", false, where);
    lc.full_gate_recurrence = config_flag(c, "full_gate_recurrence", false, where);
    if (c.find("num_heads")) lc.num_heads = config_int(c, "num_heads", 1, 1 << 24, where);
    if (const json::Value* v = c.find("proj_size"); v && !v->is_null())
        lc.proj_size = int(v->as_int(where + ".proj_size", 0, 1 << 24));
    lc.input_size = config_int(c, "input_size", 1, 1 << 24, where);
    lc.hidden_size = config_int(c, "hidden_size", 1, 1 << 24, where);
    lc.num_layers = c.find("num_layers") ? config_int(c, "num_layers", 1, 1024, where) : 1;
    lc.bias = config_flag(c, "bias", true, where);
    lc.bidirectional = config_flag(c, "bidirectional", false, where);
    lc.peephole = config_flag(c, "peephole", false, where);
    lc.linear_before_reset = config_flag(c, "linear_before_reset", true, where);
    lc.seed = config_seed(c);
    lc.dropout = config_number(c, "dropout", 0.0, where);
    lc.recurrent_dropout = config_number(c, "recurrent_dropout", 0.0, where);
    validate(lc);  // a file's options are untrusted: name the bad one
    auto layer = std::make_unique<RecurrentLayer>(lc, config_flag(c, "batch_first", false, where),
                                                  parse_merge(c.find("merge_mode"), where));
    layer->keep_unknown(c, {"input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                            "bidirectional", "recurrent_dropout", "seed", "dtype", "peephole", "linear_before_reset",
                            "nonlinearity", "activation", "recurrent_activation", "cell_clip", "recurrent_clip",
                            "input_gate", "forget_gate", "output_gate", "input_activation", "output_activation",
                            "coupled_input_forget", "zoneout", "zoneout_cell", "merge_mode", "proj_size",
                            "layer_norm", "full_gate_recurrence", "num_heads"});
    return layer;
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
