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

class RecurrentLayer : public ModelLayer, public KeepsUnknownKeys {
public:
    RecurrentLayer(const LayerConfig& config, bool batch_first) : rnn_(config), batch_first_(batch_first) {}

    const char* class_name() const override { return cell_info(rnn_.config().kind).layer_class; }
    bool is_recurrent() const override { return true; }
    bool batch_first() const override { return batch_first_; }
    int input_features() const override { return rnn_.config().input_size; }
    int directions() const override { return rnn_.num_directions(); }

    void write_config(json::Writer& w) const override {
        const LayerConfig& c = rnn_.config();
        const CellInfo& cell = cell_info(c.kind);
        w.key("input_size").value(c.input_size).key("hidden_size").value(c.hidden_size);
        w.key("num_layers").value(c.num_layers).key("bias").value(c.bias).key("batch_first").value(batch_first_);
        w.key("dropout").value(c.dropout).key("bidirectional").value(c.bidirectional);
        w.key("recurrent_dropout").value(c.recurrent_dropout).key("seed").value(std::uint64_t(c.seed));
        w.key("dtype").value("float32");
        for (const std::string& option : cell.options) {
            if (option == "peephole") w.key("peephole").value(c.peephole);
            if (option == "linear_before_reset") w.key("linear_before_reset").value(c.linear_before_reset);
        }
        if (cell.nonlinearity) w.key("nonlinearity").value(cell.nonlinearity);
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
        return rnn_.num_directions() * rnn_.config().hidden_size;
    }

    void forward(Flow& f) override {
        if (!f.has_time) throw std::logic_error("Model: a recurrent layer after LastStep is not supported");
        const int out = output_features(f.features);
        if (f.batch_first) swap_leading_axes(f.data, f.scratch, f.B, f.T, f.features);
        f.next.resize(f.rows * out);
        rnn_.forward(f.next.data(), nullptr, f.data.data(), nullptr, f.lengths, f.T, f.B, false);
        if (f.batch_first) swap_leading_axes(f.next, f.scratch, f.T, f.B, out);
        f.data.swap(f.next);
        f.features = out;
    }

    std::vector<std::vector<float>> new_state(int batch) const override {
        if (rnn_.num_directions() != 1)
            throw std::logic_error("Model::new_state: a bidirectional layer cannot stream (it needs the future)");
        const auto& c = rnn_.config();
        const std::size_t n = std::size_t(c.num_layers) * batch * c.hidden_size;
        return std::vector<std::vector<float>>(std::size_t(rnn_.num_states()), std::vector<float>(n, 0.0f));
    }

    void step(Flow& f, std::vector<std::vector<float>>& state) override {
        const auto& c = rnn_.config();
        const std::size_t n = std::size_t(c.num_layers) * f.B * c.hidden_size;
        if (state.size() != std::size_t(rnn_.num_states())) throw std::invalid_argument("state: layout mismatch");
        float* states[kMaxStates] = {};
        for (std::size_t k = 0; k < state.size(); ++k) {
            if (state[k].size() != n) throw std::invalid_argument("state: batch size or layout mismatch");
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
    // The cell kind: the registry row of this class (RNN: the one of its nonlinearity).
    const json::Value* nl = c.find("nonlinearity");
    const std::string nonlinearity = nl && !nl->is_null() ? nl->as_string(where + ".nonlinearity") : "";
    bool found = false;
    for (const CellInfo* cell : registered_cells()) {
        if (cls != cell->layer_class) continue;
        if (cell->nonlinearity && (nonlinearity.empty() ? "tanh" : nonlinearity) != cell->nonlinearity) continue;
        lc.kind = cell->kind;
        found = true;
        break;
    }
    if (!found) throw std::invalid_argument(where + ": unknown nonlinearity '" + nonlinearity + "' for " + cls);
    lc.input_size = config_int(c, "input_size", 1, 1 << 24, where);
    lc.hidden_size = config_int(c, "hidden_size", 1, 1 << 24, where);
    lc.num_layers = config_int(c, "num_layers", 1, 1024, where);
    lc.bias = config_flag(c, "bias", true, where);
    lc.bidirectional = config_flag(c, "bidirectional", false, where);
    lc.peephole = config_flag(c, "peephole", false, where);
    lc.linear_before_reset = config_flag(c, "linear_before_reset", true, where);
    lc.seed = config_seed(c);
    lc.dropout = config_number(c, "dropout", 0.0, where);
    lc.recurrent_dropout = config_number(c, "recurrent_dropout", 0.0, where);
    auto layer = std::make_unique<RecurrentLayer>(lc, config_flag(c, "batch_first", false, where));
    layer->keep_unknown(c, {"input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                            "bidirectional", "recurrent_dropout", "seed", "dtype", "peephole", "linear_before_reset",
                            "nonlinearity"});
    return layer;
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
