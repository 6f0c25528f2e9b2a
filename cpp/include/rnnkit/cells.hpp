// The cell registry, as C++ programs and the bindings see it: one row per cell kind with its name, traits,
// parameter layout, options and initialisation. Everything that depends on the kind (the layer stack, the
// C++ Model and its file format, the Python bindings) reads these rows instead of switching on the kind.
// Adding a cell is one header in cpp/src/cells/ and one row in cpp/src/cells/registry.cpp.
#pragma once

#include <string>
#include <vector>

#include "rnnkit/config.hpp"

namespace rnnkit {
inline namespace v0 {

// A dimension of a parameter tensor, in terms of the layer: G = gates * H rows, I the layer's input size,
// Output the width of h (proj_size with a projection, else H).
// Gates is the row's gate rows (gates * H, or a cell's own count such as the mLSTM's 4H + 2 heads); HeadDim is
// H / num_heads (the sLSTM's block-diagonal weight_hh).
enum class Dim : int { Gates, Input, Hidden, ExtraRows, Output, GateState, HeadDim };  // GateState: 3H (FGR)

// When a parameter exists.
enum class Presence : int { Always, WithBias, WithPeephole, WithProjection, WithLayerNorm, WithFullGateRecurrence };

// A parameter's initial values: the row's uniform initialisation, or ones / zeros (layer-norm gains / biases).
enum class Init : int { Uniform, Ones, Zeros };

struct ParamTemplate {
    const char* name;             // torch.nn name without the "_l{k}[_reverse]" suffix, e.g. "weight_ih"
    std::vector<Dim> shape;       // e.g. {Gates, Input}
    Presence presence;
    Init init = Init::Uniform;
};

struct CellInfo {
    CellKind kind;
    const char* name;             // "lstm", "gru", "rnn_tanh", "rnn_relu": bindings, JSON and Python use it
    const char* layer_class;      // the Python / model-file class: "LSTM", "GRU", "RNN"
    const char* nonlinearity;     // RNN: "tanh" or "relu" (the class's config key); nullptr otherwise
    const char* summary;          // one line of math
    int gates;                    // gate blocks of H rows in weight_ih / weight_hh
    int saved;                    // blocks of H columns a training forward saves per (t, b)
    int states;                   // state tensors (h first): LSTM 2 (h, c), GRU and RNN 1
    const char* recurrence;       // "dense", "block_diagonal", "diagonal" or "none"
    bool mid_step_product;        // a second recurrent product inside a step (GRU without linear_before_reset)
    bool cross_unit_reduction;    // the step reduces across units (layer normalisation)
    int extra_rows;               // rows of the extra [rows, H] parameter (peepholes 3), 0 if none
    std::vector<ParamTemplate> params;   // per layer and direction, in slab order
    std::vector<std::string> options;    // LayerConfig fields besides the common ones that apply
    const char* init;             // default initialisation of every parameter
    std::vector<std::string> backends;   // the backends with drivers for this cell ("cpu", "reference", ...)
    std::vector<std::string> state_names;  // the state tensors, h first ("h", "c", ...)
};

// Every registered cell kind, in registry order (a kind's value is its index).
const std::vector<const CellInfo*>& registered_cells();
const CellInfo& cell_info(CellKind kind);      // throws std::invalid_argument for an unregistered kind
CellKind cell_kind(const std::string& name);   // by name; throws std::invalid_argument listing the names
const char* to_string(CellKind kind);          // the row's name
int num_states(CellKind kind);
// Features of state k per (layer, direction, batch row) for a layer: h has proj_size with a projection; the
// mLSTM's matrix memory C has num_heads * dh * dh, its stabiliser m num_heads; most others hidden_size.
int state_width(const LayerConfig& config, int k);

}  // namespace v0
}  // namespace rnnkit
