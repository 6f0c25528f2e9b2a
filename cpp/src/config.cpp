#include "rnnkit/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#if defined(__unix__)
#include <unistd.h>
#endif

#include "cpu/workspace.hpp"
#include "rnnkit/cells.hpp"

namespace rnnkit {
inline namespace v0 {

int gate_count(CellKind kind) { return cell_info(kind).gates; }

const char* to_string(Backend backend) {
    switch (backend) {
        case Backend::Cpu: return "cpu";
        case Backend::Reference: return "reference";
        case Backend::Cuda: return "cuda";
    }
    return "?";
}

namespace {
constexpr const char* kNonlinearityNames[] = {"tanh",    "sigmoid", "relu",         "linear",     "softsign",
                                              "softplus", "elu",     "hard_sigmoid", "leaky_relu", "scaled_tanh"};
constexpr int kNonlinearityCount = int(sizeof(kNonlinearityNames) / sizeof(kNonlinearityNames[0]));
}  // namespace

const char* to_string(Nonlinearity::Kind kind) {
    return int(kind) >= 0 && int(kind) < kNonlinearityCount ? kNonlinearityNames[int(kind)] : "?";
}

int parameter_count(Nonlinearity::Kind kind) {
    switch (kind) {
        case Nonlinearity::HardSigmoid:
        case Nonlinearity::ScaledTanh: return 2;
        case Nonlinearity::Elu:
        case Nonlinearity::LeakyRelu: return 1;
        default: return 0;
    }
}

std::vector<double> parameters_of(const Nonlinearity& a) {
    const int n = parameter_count(a.kind);
    if (n == 0) return {};
    if (n == 1) return {a.alpha};
    return {a.alpha, a.beta};
}

Nonlinearity parse_nonlinearity(const std::string& name, const char* what) {
    for (int k = 0; k < kNonlinearityCount; ++k) {
        if (name != kNonlinearityNames[k]) continue;
        Nonlinearity a{Nonlinearity::Kind(k)};
        switch (a.kind) {
            case Nonlinearity::HardSigmoid: a.alpha = 1.0 / 6.0, a.beta = 0.5; break;
            case Nonlinearity::LeakyRelu: a.alpha = 0.01; break;
            case Nonlinearity::Elu: a.alpha = 1.0; break;
            case Nonlinearity::ScaledTanh: a.alpha = 1.0, a.beta = 1.0; break;
            default: break;
        }
        return a;
    }
    std::string known;
    for (int k = 0; k < kNonlinearityCount; ++k) known += std::string(k ? ", '" : "'") + kNonlinearityNames[k] + "'";
    throw std::invalid_argument(std::string(what) + ": expected one of " + known + ", got '" + name + "'");
}

Nonlinearity make_nonlinearity(const std::string& name, const std::vector<double>& params, const char* what) {
    Nonlinearity a = parse_nonlinearity(name, what);
    const int n = parameter_count(a.kind);
    if (int(params.size()) != n)
        throw std::invalid_argument(std::string(what) + ": '" + name + "' takes " + std::to_string(n) +
                                    " parameter(s), got " + std::to_string(params.size()));
    for (double v : params)
        if (!std::isfinite(v)) throw std::invalid_argument(std::string(what) + ": parameters must be finite");
    if (n >= 1) a.alpha = params[0];
    if (n >= 2) a.beta = params[1];
    if (a.kind == Nonlinearity::ScaledTanh && a.alpha == 0.0)
        throw std::invalid_argument(std::string(what) + ": scaled_tanh needs a nonzero alpha");
    return a;
}

Backend parse_backend(const std::string& name) {
    for (Backend b : {Backend::Cpu, Backend::Reference, Backend::Cuda})
        if (name == to_string(b)) return b;
    throw std::invalid_argument("backend: expected 'cpu', 'reference' or 'cuda', got '" + name + "'");
}

void validate(const LayerConfig& c) {
    auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
    if (c.input_size < 1) fail("input_size: expected a positive integer, got " + std::to_string(c.input_size));
    if (c.hidden_size < 1) fail("hidden_size: expected a positive integer, got " + std::to_string(c.hidden_size));
    if (c.num_layers < 1) fail("num_layers: expected a positive integer, got " + std::to_string(c.num_layers));
    if (!(c.dropout >= 0.0 && c.dropout < 1.0))
        fail("dropout: expected a probability in [0, 1), got " + std::to_string(c.dropout));
    if (!(c.recurrent_dropout >= 0.0 && c.recurrent_dropout < 1.0))
        fail("recurrent_dropout: expected a probability in [0, 1), got " + std::to_string(c.recurrent_dropout));
    const CellInfo& cell = cell_info(c.kind);  // throws for an unregistered kind
    auto has_option = [&cell](const char* option) {
        return std::find(cell.options.begin(), cell.options.end(), option) != cell.options.end();
    };
    if (c.peephole && !has_option("peephole"))
        fail(std::string("peephole: only an LSTM has peephole connections, got kind '") + cell.name + "'");
    // Every other option: a value other than its default needs the cell to take it.
    const LayerConfig d;
    auto option = [&](const char* name, bool differs) {
        if (differs && !has_option(name)) fail(std::string(name) + ": not an option of cell kind '" + cell.name + "'");
    };
    option("activation", c.activation != d.activation && !has_option("nonlinearity"));
    option("recurrent_activation", c.recurrent_activation != d.recurrent_activation);
    option("cell_clip", c.cell_clip != d.cell_clip);
    option("input_gate", c.input_gate != d.input_gate);
    option("forget_gate", c.forget_gate != d.forget_gate);
    option("output_gate", c.output_gate != d.output_gate);
    option("input_activation", c.input_activation != d.input_activation);
    option("output_activation", c.output_activation != d.output_activation);
    option("coupled_input_forget", c.coupled_input_forget != d.coupled_input_forget);
    option("zoneout", c.zoneout != d.zoneout);
    option("zoneout_cell", c.zoneout_cell != d.zoneout_cell);
    option("recurrent_clip", c.recurrent_clip != d.recurrent_clip);
    option("proj_size", c.proj_size != d.proj_size);
    option("layer_norm", c.layer_norm != d.layer_norm);
    option("full_gate_recurrence", c.full_gate_recurrence != d.full_gate_recurrence);
    option("num_heads", c.num_heads != d.num_heads);
    if (c.num_heads < 1 || c.hidden_size % c.num_heads != 0)
        fail("num_heads: expected a positive divisor of hidden_size (" + std::to_string(c.hidden_size) + "), got " +
             std::to_string(c.num_heads));
    if (c.recurrent_dropout > 0.0 && std::string(cell.recurrence) == "none")
        fail(std::string("recurrent_dropout: cell kind '") + cell.name +
             "' has no recurrent weights (its gates read the input only); use dropout between layers");
    if (c.full_gate_recurrence &&
        (c.layer_norm || c.proj_size > 0 || c.cell_clip > 0 || c.zoneout > 0 || c.zoneout_cell > 0 || !c.input_gate ||
         !c.forget_gate || !c.output_gate || !c.input_activation || !c.output_activation || c.coupled_input_forget))
        fail("full_gate_recurrence: combines with peephole, activation and recurrent_activation (Greff's FGR is the "
             "vanilla LSTM plus it); not with layer_norm, proj_size, cell_clip, zoneout or the other gate options");
    if (c.layer_norm) {
        const bool lstm_extras = !c.input_gate || !c.forget_gate || !c.output_gate || !c.input_activation ||
                                 !c.output_activation || c.coupled_input_forget || c.peephole || c.cell_clip > 0 ||
                                 c.proj_size > 0;
        if (lstm_extras)
            fail("layer_norm: combines with activation and recurrent_activation; not (yet) with peephole, the gate "
                 "options, cell_clip or proj_size");
        if (c.zoneout > 0 || c.zoneout_cell > 0) fail("layer_norm: not (yet) combined with zoneout");
        if (!c.linear_before_reset) fail("layer_norm: a GRU normalises R h as a whole: needs linear_before_reset=True");
    }
    if (c.proj_size < 0 || (c.proj_size > 0 && c.proj_size >= c.hidden_size))
        fail("proj_size: expected 0 (no projection) or a size below hidden_size (" + std::to_string(c.hidden_size) +
             "), got " + std::to_string(c.proj_size));
    if (c.proj_size > 0 && (c.zoneout > 0 || c.zoneout_cell > 0))
        fail("zoneout: not available with proj_size yet (the projected h and zoneout's masks are not combined)");
    if (!(c.cell_clip >= 0.0 && std::isfinite(c.cell_clip)))
        fail("cell_clip: expected a non-negative number (0: no clipping), got " + std::to_string(c.cell_clip));
    if (!(c.recurrent_clip >= 0.0 && std::isfinite(c.recurrent_clip)))
        fail("recurrent_clip: expected a non-negative number (0: no clipping), got " + std::to_string(c.recurrent_clip));
    if (!(c.zoneout >= 0.0 && c.zoneout < 1.0))
        fail("zoneout: expected a probability in [0, 1), got " + std::to_string(c.zoneout));
    if (!(c.zoneout_cell >= 0.0 && c.zoneout_cell < 1.0))
        fail("zoneout_cell: expected a probability in [0, 1), got " + std::to_string(c.zoneout_cell));
    if (c.coupled_input_forget && (!c.input_gate || !c.forget_gate))
        fail("coupled_input_forget: i = 1 - f needs the forget gate and replaces the input gate; "
             "leave input_gate and forget_gate True");
    for (const Nonlinearity* a : {&c.activation, &c.recurrent_activation})
        if (!std::isfinite(a->alpha) || !std::isfinite(a->beta) ||
            (a->kind == Nonlinearity::ScaledTanh && a->alpha == 0.0))
            fail("activation: parameters must be finite (scaled_tanh: alpha nonzero)");
    if (int(c.backend) < 0 || int(c.backend) > int(Backend::Cuda)) fail("backend: unknown backend");
    if (c.cell && (c.num_layers != 1 || c.bidirectional))
        fail("cell: a cell has one layer and one direction");
}

const char* instruction_set() {
#if defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__)
    return "avx2";
#else
    return "baseline";
#endif
}

namespace detail {

void require_memory(double bytes, const std::string& what, const std::string& advice) {
#if defined(__unix__)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return;
    const double memory = double(pages) * double(page);
    if (bytes <= memory) return;
    char text[160];
    std::snprintf(text, sizeof text, " needs %.1f GiB, more than the %.1f GiB of memory this machine has", bytes / 1073741824.0,
                  memory / 1073741824.0);
    throw std::invalid_argument(what + text + advice);
#else
    (void)bytes, (void)what, (void)advice;
#endif
}

}  // namespace detail

std::size_t scratch_bytes() { return detail::ScratchStack::of_this_thread().kept_bytes(); }

void release_scratch() { detail::ScratchStack::of_this_thread().release_kept(); }


}  // namespace v0
}  // namespace rnnkit
