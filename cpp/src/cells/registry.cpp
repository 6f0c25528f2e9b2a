// The cell registry: one row per cell kind. Everything that depends on the kind reads its row (see
// rnnkit/cells.hpp). A new cell with a dense recurrence is a header in this folder and one row below: the CPU
// driver is instantiated for it here; a hand-written reference (reference/) is optional.
#include "cells/registry.hpp"

#include <stdexcept>
#include <string>

#include "cells/gru.hpp"
#include "cells/full_gate.hpp"
#include "cells/indrnn.hpp"
#include "cells/layer_norm.hpp"
#include "cells/lstm.hpp"
#include "cells/lstm_variants.hpp"
#include "cells/rnn.hpp"
#include "cpu/driver.hpp"
#include "cpu/row_driver.hpp"
#include "reference/reference.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

namespace {

constexpr const char* recurrence_name(Recurrence r) {
    switch (r) {
        case Recurrence::Dense: return "dense";
        case Recurrence::BlockDiagonal: return "block_diagonal";
        case Recurrence::Diagonal: return "diagonal";
        default: return "none";
    }
}

// weight_ih [G, I], weight_hh [G, H], bias_ih [G], bias_hh [G]: torch's names and shapes for every dense cell.
std::vector<ParamTemplate> dense_params() {
    return {{"weight_ih", {Dim::Gates, Dim::Input}, Presence::Always},
            {"weight_hh", {Dim::Gates, Dim::Output}, Presence::Always},
            {"bias_ih", {Dim::Gates}, Presence::WithBias},
            {"bias_hh", {Dim::Gates}, Presence::WithBias}};
}

// The backends' entry points for a cell: the CPU driver instantiated for Cell (or for a cell chosen at run
// time by Pick), and the hand-written reference pair if any.
template <class Cell>
struct Fixed {
    template <class S> static void forward(const SeqForward<S>& a) { cpu::sequence_forward<Cell, S>(a); }
    template <class S> static void backward(const SeqBackward<S>& a) { cpu::sequence_backward<Cell, S>(a); }
};
// A row whose options choose between a fixed cell (the classic math, inline) and a general one.
template <class Classic, class General>
struct Pick {
    template <class S> static void forward(const SeqForward<S>& a) {
        a.opt->general ? cpu::sequence_forward<General, S>(a) : cpu::sequence_forward<Classic, S>(a);
    }
    template <class S> static void backward(const SeqBackward<S>& a) {
        a.opt->general ? cpu::sequence_backward<General, S>(a) : cpu::sequence_backward<Classic, S>(a);
    }
};
// A row whose layer_norm option runs a layer-normalised cell on the row driver (threads own batch rows).
template <class LayerNormCell, class Units>
struct NormPick {
    template <class S> static void forward(const SeqForward<S>& a) {
        a.opt->layer_norm ? cpu::sequence_forward_rows<LayerNormCell, S>(a) : Units::forward(a);
    }
    template <class S> static void backward(const SeqBackward<S>& a) {
        a.opt->layer_norm ? cpu::sequence_backward_rows<LayerNormCell, S>(a) : Units::backward(a);
    }
};
// The LSTM row: the full-gate-recurrence cell on the row driver, or NormPick's choice.
struct LstmPick {
    using Units = NormPick<LstmLayerNormCell, Pick<LstmCell, LstmVariantCell>>;
    template <class S> static void forward(const SeqForward<S>& a) {
        a.opt->full_gate ? cpu::sequence_forward_rows<LstmFullGateCell, S>(a) : Units::forward(a);
    }
    template <class S> static void backward(const SeqBackward<S>& a) {
        a.opt->full_gate ? cpu::sequence_backward_rows<LstmFullGateCell, S>(a) : Units::backward(a);
    }
};
struct GruPick {  // linear_before_reset changes the step's schedule (a mid-step product without it)
    template <class S> static void forward(const SeqForward<S>& a) {
        a.opt->linear_before_reset ? Pick<GruCell<true>, GruCell<true, RuntimeActs>>::forward(a)
                                   : Pick<GruCell<false>, GruCell<false, RuntimeActs>>::forward(a);
    }
    template <class S> static void backward(const SeqBackward<S>& a) {
        a.opt->linear_before_reset ? Pick<GruCell<true>, GruCell<true, RuntimeActs>>::backward(a)
                                   : Pick<GruCell<false>, GruCell<false, RuntimeActs>>::backward(a);
    }
};

// The rows' configure functions: a layer's options as its cell reads them.
CellOptions common_options(const LayerConfig& c, int gates, int saved) {
    CellOptions o;
    o.gates = gates;
    o.saved = saved;
    o.activation = c.activation;
    o.recurrent_activation = c.recurrent_activation;
    o.linear_before_reset = c.linear_before_reset;
    o.recurrent_clip = c.recurrent_clip;
    o.layer_norm = c.layer_norm;
    return o;
}
CellOptions lstm_options(const LayerConfig& c) {
    const LayerConfig d;
    CellOptions o = common_options(c, 4, 4);
    o.states = c.full_gate_recurrence ? 3 : 2;
    o.full_gate = c.full_gate_recurrence;
    o.general = c.activation != d.activation || c.recurrent_activation != d.recurrent_activation || c.cell_clip > 0 ||
                !c.input_gate || !c.forget_gate || !c.output_gate || !c.input_activation || !c.output_activation ||
                c.coupled_input_forget || c.zoneout > 0 || c.zoneout_cell > 0;
    const Nonlinearity linear{Nonlinearity::Linear};
    o.input_activation = c.input_activation ? c.activation : linear;
    o.output_activation = c.output_activation ? c.activation : linear;
    o.clip = c.cell_clip;
    o.coupled = c.coupled_input_forget;
    const bool present[4] = {c.input_gate && !c.coupled_input_forget, c.forget_gate, true, c.output_gate};
    int g = 0;
    for (int k = 0; k < 4; ++k) o.slot[k] = present[k] ? g++ : -1;
    o.gates = g;
    if (o.general) o.saved = LstmVariantCell::saved_blocks(o);
    if (c.layer_norm) o.saved = LstmLayerNormCell::traits.saved;
    if (c.full_gate_recurrence) o.saved = LstmFullGateCell::traits.saved;
    return o;
}
CellOptions gru_options(const LayerConfig& c) {
    const LayerConfig d;
    CellOptions o = common_options(c, 3, 4);
    o.general = c.activation != d.activation || c.recurrent_activation != d.recurrent_activation;
    if (c.layer_norm) o.saved = GruLayerNormCell::traits.saved;
    return o;
}
CellOptions single_gate_options(const LayerConfig& c) { return common_options(c, 1, 1); }

template <class S>
using RefPair = std::pair<ForwardFn<S>, BackwardFn<S>>;

template <class Cell, class Cpu = Fixed<Cell>>
CellSpec row(CellKind kind, const char* name, const char* layer_class, const char* nonlinearity, const char* summary,
             std::vector<ParamTemplate> params, std::vector<std::string> options,
             CellOptions (*configure)(const LayerConfig&), RefPair<float> ref32, RefPair<double> ref64) {
    constexpr CellTraits tr = Cell::traits;
    CellSpec spec{CellInfo{kind, name, layer_class, nonlinearity, summary, tr.gates, tr.saved, tr.states,
                           recurrence_name(tr.recurrence), tr.mid_step_product, tr.cross_unit_reduction,
                           tr.extra_rows, std::move(params), std::move(options),
                           "uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch.nn", {"cpu"}},
                  configure, {}, {}};
    const int cpu = int(Backend::Cpu), ref = int(Backend::Reference);
    spec.f32.forward[cpu] = &Cpu::template forward<float>;
    spec.f32.backward[cpu] = &Cpu::template backward<float>;
    spec.f64.forward[cpu] = &Cpu::template forward<double>;
    spec.f64.backward[cpu] = &Cpu::template backward<double>;
    spec.f32.forward[ref] = ref32.first;
    spec.f32.backward[ref] = ref32.second;
    spec.f64.forward[ref] = ref64.first;
    spec.f64.backward[ref] = ref64.second;
    if (ref32.first) spec.info.backends.push_back("reference");
    if (!configure) throw std::logic_error(std::string("cell registry: row '") + name + "' has no configure");
    return spec;
}

#define RNNKIT_REFERENCE(cell)                                                                        \
    RefPair<float>{&reference::cell##_forward<float>, &reference::cell##_backward<float>},          \
        RefPair<double> { &reference::cell##_forward<double>, &reference::cell##_backward<double> }

}  // namespace

const std::vector<CellSpec>& cell_table() {
    static const std::vector<CellSpec> rows = [] {
        std::vector<CellSpec> r;
        auto lstm_params = dense_params();
        lstm_params.push_back({"weight_peephole", {Dim::ExtraRows, Dim::Hidden}, Presence::WithPeephole});
        lstm_params.push_back({"weight_hr", {Dim::Output, Dim::Hidden}, Presence::WithProjection});
        auto norm_params = [](bool cell) {
            std::vector<ParamTemplate> p{{"weight_ln_ih", {Dim::Gates}, Presence::WithLayerNorm, Init::Ones},
                                         {"weight_ln_hh", {Dim::Gates}, Presence::WithLayerNorm, Init::Ones}};
            if (cell) {
                p.push_back({"weight_ln_c", {Dim::Hidden}, Presence::WithLayerNorm, Init::Ones});
                p.push_back({"bias_ln_c", {Dim::Hidden}, Presence::WithLayerNorm, Init::Zeros});
            }
            return p;
        };
        for (auto& p : norm_params(true)) lstm_params.push_back(p);
        lstm_params.push_back({"weight_gates", {Dim::GateState, Dim::GateState}, Presence::WithFullGateRecurrence});
        auto gru_params = dense_params();
        for (auto& p : norm_params(false)) gru_params.push_back(p);
        r.push_back(row<LstmCell, LstmPick>(
            CellKind::LSTM, "lstm", "LSTM", nullptr,
            "c = f c_prev + i tanh(g);  h = o tanh(c)  (i, f, o sigmoid; optional peepholes and variants)",
            lstm_params,
            {"peephole", "activation", "recurrent_activation", "cell_clip", "input_gate", "forget_gate", "output_gate",
             "input_activation", "output_activation", "coupled_input_forget", "zoneout", "zoneout_cell", "proj_size",
             "layer_norm", "full_gate_recurrence"},
            &lstm_options, RNNKIT_REFERENCE(lstm)));
        r.push_back(row<GruCell<true>, NormPick<GruLayerNormCell, GruPick>>(
                                                CellKind::GRU, "gru", "GRU", nullptr,
                                                "h = (1 - z) n + z h_prev;  n = tanh(W_n x + r (R_n h + b_hn)) or "
                                                "tanh(W_n x + R_n (r h) + b_hn)",
                                                gru_params,
                                                {"linear_before_reset", "activation", "recurrent_activation", "zoneout",
                                                 "layer_norm"},
                                                &gru_options, RNNKIT_REFERENCE(gru)));
        r.push_back(row<RnnCell<TanhAct>>(CellKind::RNN_TANH, "rnn_tanh", "RNN", "tanh",
                                          "h = tanh(W x + b_ih + R h_prev + b_hh)", dense_params(), {},
                                          &single_gate_options, RNNKIT_REFERENCE(rnn)));
        r.push_back(row<RnnCell<ReluAct>>(CellKind::RNN_RELU, "rnn_relu", "RNN", "relu",
                                          "h = max(W x + b_ih + R h_prev + b_hh, 0)", dense_params(), {},
                                          &single_gate_options, RNNKIT_REFERENCE(rnn)));
        r.push_back(row<RnnCell<RuntimeAct>>(CellKind::RNN, "rnn", "RNN", nullptr,
                                             "h = act(W x + b_ih + R h_prev + b_hh), act any activation",
                                             dense_params(), {"nonlinearity"}, &single_gate_options,
                                             {nullptr, nullptr}, {nullptr, nullptr}));
        r.push_back(row<IndRnnCell>(CellKind::INDRNN, "indrnn", "IndRNN", nullptr,
                                    "h = act(W x + b_ih + b_hh + u * h_prev), u = weight_hh (H,) elementwise",
                                    {{"weight_ih", {Dim::Gates, Dim::Input}, Presence::Always},
                                     {"weight_hh", {Dim::Hidden}, Presence::Always},
                                     {"bias_ih", {Dim::Gates}, Presence::WithBias},
                                     {"bias_hh", {Dim::Gates}, Presence::WithBias}},
                                    {"nonlinearity", "recurrent_clip"}, &single_gate_options, {nullptr, nullptr},
                                    {nullptr, nullptr}));
        for (std::size_t i = 0; i < r.size(); ++i)
            if (int(r[i].info.kind) != int(i)) throw std::logic_error("cell registry: kinds must be row indices");
        return r;
    }();
    return rows;
}

namespace {

template <class S>
const Drivers<S>& drivers_of(const CellSpec* cell) {
    if (!cell) throw std::logic_error("sequence driver: no cell");
    return cell->drivers(static_cast<S*>(nullptr));
}

}  // namespace

const CellSpec& cell_spec(CellKind kind) {
    const auto& rows = cell_table();
    const int k = int(kind);
    if (k < 0 || k >= int(rows.size()))
        throw std::invalid_argument("kind: no cell kind " + std::to_string(k) + " is registered");
    return rows[std::size_t(k)];
}

template <class S>
void sequence_forward(Backend backend, const SeqForward<S>& a) {
    const ForwardFn<S> fn = drivers_of<S>(a.cell).forward[int(backend)];
    if (!fn)
        throw std::invalid_argument(std::string("backend: '") + to_string(backend) + "' has no driver for cell '" +
                                    a.cell->info.name + "' in this build");
    fn(a);
}

template <class S>
void sequence_backward(Backend backend, const SeqBackward<S>& a) {
    const BackwardFn<S> fn = drivers_of<S>(a.cell).backward[int(backend)];
    if (!fn)
        throw std::invalid_argument(std::string("backend: '") + to_string(backend) + "' has no driver for cell '" +
                                    a.cell->info.name + "' in this build");
    fn(a);
}

template void sequence_forward<float>(Backend, const SeqForward<float>&);
template void sequence_forward<double>(Backend, const SeqForward<double>&);
template void sequence_backward<float>(Backend, const SeqBackward<float>&);
template void sequence_backward<double>(Backend, const SeqBackward<double>&);

}  // namespace detail

// The public view of the rows (rnnkit/cells.hpp).
const std::vector<const CellInfo*>& registered_cells() {
    static const std::vector<const CellInfo*> infos = [] {
        std::vector<const CellInfo*> v;
        for (const auto& row : detail::cell_table()) v.push_back(&row.info);
        return v;
    }();
    return infos;
}

const CellInfo& cell_info(CellKind kind) { return detail::cell_spec(kind).info; }

CellKind cell_kind(const std::string& name) {
    std::string known;
    for (const CellInfo* c : registered_cells()) {
        if (name == c->name) return c->kind;
        known += std::string(known.empty() ? "'" : ", '") + c->name + "'";
    }
    throw std::invalid_argument("kind: expected one of " + known + ", got '" + name + "'");
}

const char* to_string(CellKind kind) { return cell_info(kind).name; }

int num_states(CellKind kind) { return cell_info(kind).states; }

}  // namespace v0
}  // namespace rnnkit
