// The cell registry: one row per cell kind. Everything that depends on the kind reads its row (see
// rnnkit/cells.hpp). A new cell with a dense recurrence is a header in this folder and one row below: the CPU
// driver is instantiated for it here; a hand-written reference (reference/) is optional.
#include "cells/registry.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>
#include <string>

#include "cells/gru.hpp"
#include "cells/full_gate.hpp"
#include "cells/indrnn.hpp"
#include "cells/layer_norm.hpp"
#include "cells/lstm.hpp"
#include "cells/lstm_variants.hpp"
#include "cells/min_rnn.hpp"
#include "cells/mlstm.hpp"
#include "cells/slstm.hpp"
#include "cells/rnn.hpp"
#include "cpu/driver.hpp"
#include "cpu/mlstm_driver.hpp"
#include "cpu/scan_driver.hpp"
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

// A block-diagonal recurrence (sLSTM): weight_hh [G, dh] holds each gate row's dh weights on the h of its head.
// The CPU driver runs it as a dense [G, H] matrix with zeros off the heads' blocks (num_heads times the
// recurrent arithmetic of a per-head product, on the driver's packed, threaded product); backward folds the
// dense gradient's blocks back.
template <class Cell>
struct BlockDiagonal {
    template <class S>
    static std::vector<S> expand(const S* R, int H, int heads) {  // [G, dh] -> [G, H]
        const int dh = H / heads, G = Cell::traits.gates * H;
        std::vector<S> dense(std::size_t(G) * H, S(0));
        for (int r = 0; r < G; ++r) {
            const int head = (r % H) / dh;
            for (int i = 0; i < dh; ++i) dense[std::size_t(r) * H + head * dh + i] = R[std::size_t(r) * dh + i];
        }
        return dense;
    }
    template <class S> static void forward(const SeqForward<S>& a) {
        const std::vector<S> dense = expand(a.R, a.H, a.opt->num_heads);
        SeqForward<S> d = a;
        d.R = dense.data();
        cpu::sequence_forward<Cell, S>(d);
    }
    template <class S> static void backward(const SeqBackward<S>& a) {
        const int H = a.H, dh = H / a.opt->num_heads, G = Cell::traits.gates * H;
        const std::vector<S> dense = expand(a.R, H, a.opt->num_heads);
        std::vector<S> dR(std::size_t(G) * H, S(0));
        SeqBackward<S> d = a;
        d.R = dense.data();
        d.dR = dR.data();
        cpu::sequence_backward<Cell, S>(d);
        for (int r = 0; r < G; ++r) {
            const int head = (r % H) / dh;
            for (int i = 0; i < dh; ++i) a.dR[std::size_t(r) * dh + i] += dR[std::size_t(r) * H + head * dh + i];
        }
    }
};
// Cells whose step is a linear recurrence: the scan driver; the mLSTM: its own driver.
template <class Cell>
struct Scan {
    template <class S> static void forward(const SeqForward<S>& a) { cpu::scan_forward<Cell, S>(a); }
    template <class S> static void backward(const SeqBackward<S>& a) { cpu::scan_backward<Cell, S>(a); }
};
struct Mlstm {
    template <class S> static void forward(const SeqForward<S>& a) { cpu::mlstm_forward<S>(a); }
    template <class S> static void backward(const SeqBackward<S>& a) { cpu::mlstm_backward<S>(a); }
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
CellOptions slstm_options(const LayerConfig& c) {
    CellOptions o = common_options(c, 4, SlstmCell::traits.saved);
    o.states = 4;
    o.num_heads = c.num_heads;
    return o;
}
CellOptions mlstm_options(const LayerConfig& c) {
    CellOptions o = common_options(c, 4, MlstmCell::traits.saved);
    o.states = 4;
    o.num_heads = c.num_heads;
    o.gate_rows = MlstmCell::gate_rows(c.hidden_size, c.num_heads);
    return o;
}
template <class Cell>
CellOptions min_options(const LayerConfig& c) { return common_options(c, Cell::traits.gates, Cell::traits.saved); }

int mlstm_state_width(const LayerConfig& c, int k) { return MlstmCell::state_width(k, c.hidden_size, c.num_heads); }
int mlstm_training_slots(const LayerConfig&, int k, int T) { return MlstmCell::training_slots(k, T); }

// xlstm's gate-bias initialisation. sLSTM (its "powerlaw_blockdependent" for one block): the forget gate's bias
// of unit u of a head is -(-5 + 12 (u / (dh - 1))^0.3) (from 5 down to -7), every other bias 0. mLSTM: the input
// and forget gates' weight rows 0, their biases N(0, 0.1) and linspace(3, 6) over the heads.
void slstm_initialize(const LayerConfig& c, const std::string& name, std::vector<double>& v, std::mt19937_64&) {
    if (name.rfind("bias_", 0) != 0) return;
    const int H = c.hidden_size, dh = H / c.num_heads;
    for (double& x : v) x = 0.0;
    if (name.rfind("bias_ih", 0) != 0) return;
    for (int u = 0; u < H; ++u) {
        const int j = u % dh;
        const double ratio = dh > 1 ? double(j) / double(dh - 1) : 0.0;
        v[std::size_t(H + u)] = -(-5.0 + 12.0 * std::pow(ratio, 0.3));
    }
}
void mlstm_initialize(const LayerConfig& c, const std::string& name, std::vector<double>& v, std::mt19937_64& engine) {
    const int H = c.hidden_size, NH = c.num_heads;
    if (name.rfind("weight_ih", 0) == 0) {
        const std::size_t I = v.size() / std::size_t(4 * H + 2 * NH);
        for (std::size_t i = std::size_t(4 * H) * I; i < v.size(); ++i) v[i] = 0.0;
    } else if (name.rfind("bias_ih", 0) == 0) {
        std::normal_distribution<double> normal(0.0, 0.1);
        for (int h = 0; h < NH; ++h) {
            v[std::size_t(4 * H + h)] = normal(engine);
            v[std::size_t(4 * H + NH + h)] = NH > 1 ? 3.0 + 3.0 * h / (NH - 1) : 3.0;
        }
    }
}

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
                           "uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch.nn", {"cpu"}, {}},
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
    const char* names[kMaxStates] = {"h", "c", tr.states == 4 ? "n" : "a", "m"};
    for (int k = 0; k < tr.states; ++k) spec.info.state_names.push_back(names[k]);
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
        auto xlstm_params = dense_params();
        xlstm_params[1].shape = {Dim::Gates, Dim::HeadDim};
        r.push_back(row<SlstmCell, BlockDiagonal<SlstmCell>>(
            CellKind::SLSTM, "slstm", "sLSTM", nullptr,
            "m = max(i~, m_prev + log σ(f~)); c = f c_prev + i tanh(z~); n = f n_prev + i; h = σ(o~) c / n "
            "(i = exp(i~ - m), f = exp(log σ(f~) + m_prev - m); R block-diagonal over heads)",
            xlstm_params, {"num_heads"}, &slstm_options, {nullptr, nullptr}, {nullptr, nullptr}));
        r.back().initialize = &slstm_initialize;
        r.push_back(row<MlstmCell, Mlstm>(
            CellKind::MLSTM, "mlstm", "mLSTM", nullptr,
            "C = f C_prev + i k v^T; n = f n_prev + i k; h = σ(o~) C^T q / max(|n.q|, e^-m) per head "
            "(i, f scalars per head, stabilised by m; no recurrent weights)",
            {{"weight_ih", {Dim::Gates, Dim::Input}, Presence::Always},
             {"bias_ih", {Dim::Gates}, Presence::WithBias}},
            {"num_heads"}, &mlstm_options, {nullptr, nullptr}, {nullptr, nullptr}));
        r.back().initialize = &mlstm_initialize;
        r.back().state_width = &mlstm_state_width;
        r.back().training_slots = &mlstm_training_slots;
        r.back().info.state_names = {"h", "C", "n", "m"};
        const std::vector<ParamTemplate> input_only{{"weight_ih", {Dim::Gates, Dim::Input}, Presence::Always},
                                                    {"bias_ih", {Dim::Gates}, Presence::WithBias}};
        r.push_back(row<MinGruCell, Scan<MinGruCell>>(
            CellKind::MINGRU, "mingru", "minGRU", nullptr,
            "h = (1 - z) h_prev + z g(h~), z = σ(W_z x + b_z), h~ = W_h x + b_h; g(x) = x + 1/2 (x >= 0), σ(x) "
            "(x < 0); a parallel scan over time in training",
            input_only, {}, &min_options<MinGruCell>, {nullptr, nullptr}, {nullptr, nullptr}));
        r.push_back(row<MinLstmCell, Scan<MinLstmCell>>(
            CellKind::MINLSTM, "minlstm", "minLSTM", nullptr,
            "h = f' h_prev + i' g(h~), f' = f / (f + i), i' = i / (f + i), f, i = σ(W x + b); a parallel scan over "
            "time in training",
            input_only, {}, &min_options<MinLstmCell>, {nullptr, nullptr}, {nullptr, nullptr}));
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

int state_width(const LayerConfig& c, int k) {
    const detail::CellSpec& spec = detail::cell_spec(c.kind);
    if (spec.state_width) return spec.state_width(c, k);
    if (k == 0 && c.proj_size > 0) return c.proj_size;
    return k == 2 && c.full_gate_recurrence ? 3 * c.hidden_size : c.hidden_size;
}

namespace detail {
int training_slots(const LayerConfig& c, int k, int T) {
    const CellSpec& spec = cell_spec(c.kind);
    return spec.training_slots ? spec.training_slots(c, k, T) : T + 1;
}
}  // namespace detail

int num_states(CellKind kind) { return cell_info(kind).states; }

}  // namespace v0
}  // namespace rnnkit
