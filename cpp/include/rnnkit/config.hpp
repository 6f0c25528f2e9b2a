// rnnkit: recurrent layers with forward and backpropagation-through-time in C++.
//
// Shape legend (used in every rnnkit header and source file):
//   T = time steps, B = batch, I = input size, H = hidden size, L = number of layers,
//   D = number of directions (1, or 2 when bidirectional), G = gate rows per direction
//   (LSTM 4H in order i f g o; GRU 3H in order r z n; RNN H).
//   The rightmost dimension is contiguous; every array is dense row-major.
//
// Gradient rule (one rule, everywhere): parameter gradients accumulate (+=) until zero_grad();
// activation gradients (dx, dh0, dc0) overwrite (=); carried dh/dc start at zero when the caller
// passes no final-state gradient.
#pragma once

#include <cstddef>

#include <cstdint>
#include <string>
#include <vector>

#include "rnnkit/version.hpp"

namespace rnnkit {
inline namespace v0 {

// A cell kind is a row of the cell registry (rnnkit/cells.hpp lists them, with names, traits and parameter
// layouts); the built-in rows have names here. A kind registered later is reached by name: cell_kind("...").
enum class CellKind : int {
    LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3, RNN = 4, INDRNN = 5,
    SLSTM = 6, MLSTM = 7, MINGRU = 8, MINLSTM = 9  // xLSTM's sLSTM and mLSTM; Feng et al.'s minGRU, minLSTM
};

// The most state tensors a cell carries (LSTM 2: h, c; GRU and RNN 1; later cells up to 4), h first.
constexpr int kMaxStates = 4;

// Where a recurrent layer's sequence loops run: Cpu (thread team, packed weights; the default), Reference
// (single-threaded formulas, no packing: slow, the oracle the fast drivers are tested against), Cuda (a GPU
// build; none yet).
enum class Backend : int { Cpu = 0, Reference = 1, Cuda = 2 };
const char* to_string(Backend backend);
Backend parse_backend(const std::string& name);  // "cpu", "reference", "cuda"; throws std::invalid_argument

// An elementwise activation of a recurrent cell, with Keras's and ONNX's names. The parameterised ones:
//   hard_sigmoid  clip(alpha x + beta, 0, 1)   (default alpha 1/6, beta 1/2: Keras 3's relu6(x + 3) / 6;
//                                               ONNX's HardSigmoid is alpha 0.2, beta 0.5)
//   leaky_relu    x > 0 ? x : alpha x          (default alpha 0.01, as torch and ONNX)
//   elu           x > 0 ? x : alpha (e^x - 1)  (default alpha 1)
//   scaled_tanh   alpha tanh(beta x)           (ONNX ScaledTanh; default alpha 1, beta 1)
// The others: tanh, sigmoid, relu, linear (x), softsign x / (1 + |x|), softplus log(1 + e^x).
struct Nonlinearity {
    enum Kind : int { Tanh, Sigmoid, Relu, Linear, Softsign, Softplus, Elu, HardSigmoid, LeakyRelu, ScaledTanh };
    Kind kind = Tanh;
    double alpha = 0.0;
    double beta = 0.0;
    bool operator==(const Nonlinearity& o) const { return kind == o.kind && alpha == o.alpha && beta == o.beta; }
    bool operator!=(const Nonlinearity& o) const { return !(*this == o); }
};
// By name with the default parameters; throws std::invalid_argument naming `what` and listing the names.
Nonlinearity parse_nonlinearity(const std::string& name, const char* what = "activation");
// By name with explicit parameters (as many as the kind takes: hard_sigmoid and scaled_tanh 2, elu and
// leaky_relu 1, the others 0); throws std::invalid_argument for a wrong count or a non-finite value.
Nonlinearity make_nonlinearity(const std::string& name, const std::vector<double>& params,
                               const char* what = "activation");
const char* to_string(Nonlinearity::Kind kind);
int parameter_count(Nonlinearity::Kind kind);   // the parameters a kind takes (0, 1 or 2)
std::vector<double> parameters_of(const Nonlinearity& a);  // [] or [alpha] or [alpha, beta]

// Everything that fixes a recurrent layer's parameter layout and behaviour.
struct LayerConfig {
    CellKind kind = CellKind::LSTM;
    int input_size = 0;
    int hidden_size = 0;
    int num_layers = 1;
    bool bias = true;
    bool bidirectional = false;
    bool peephole = false;              // LSTM only: Gers & Schmidhuber 2000 peephole connections
    bool linear_before_reset = true;    // GRU only: true = PyTorch/cuDNN, false = Cho et al. 2014
    double dropout = 0.0;               // between layers, training only
    double recurrent_dropout = 0.0;     // on the recurrent input h_prev, one mask per sequence, training only
    bool cell = false;                  // single-step cell: parameter names carry no _l{k} suffix
    // Activations (Keras's activation / recurrent_activation): LSTM candidate and cell output, GRU candidate,
    // RNN (kind RNN) and IndRNN the nonlinearity; recurrent_activation the LSTM and GRU gates.
    Nonlinearity activation{Nonlinearity::Tanh};
    Nonlinearity recurrent_activation{Nonlinearity::Sigmoid};
    double cell_clip = 0.0;             // LSTM: clip the inputs of the activations to [-cell_clip, cell_clip] (0: off)
    // LSTM gate options (Greff et al. 2016): a removed gate is 1 and has no rows in weight_ih/weight_hh/biases;
    // coupled_input_forget sets i = 1 - f (no input-gate rows); input/output_activation false make the candidate
    // / the cell output linear.
    bool input_gate = true;
    bool forget_gate = true;
    bool output_gate = true;
    bool input_activation = true;
    bool output_activation = true;
    bool coupled_input_forget = false;
    // Zoneout (Krueger et al. 2017): with probability zoneout a unit of h keeps its previous value at a step
    // (zoneout_cell: the LSTM cell state c); training draws per-step masks from the seed, inference uses the
    // expectation h = p h_prev + (1 - p) h_new.
    double zoneout = 0.0;
    double zoneout_cell = 0.0;
    double recurrent_clip = 0.0;        // IndRNN: the recurrent weights act as clip(u, -clip, clip) (0: off)
    // LSTM projection (torch's proj_size, Sak et al. 2014): h = (o act(c)) W_hr^T has proj_size features, c keeps
    // hidden_size; weight_hr_l{k} [proj_size, H], weight_hh [4H, proj_size]; 0: none.
    int proj_size = 0;
    // Layer normalisation (Ba et al. 2016, haste's LayerNormLSTM / LayerNormGRU): LN of the input and recurrent
    // products (gains weight_ln_ih, weight_ln_hh [G]) and, for the LSTM, of c before the output activation
    // (weight_ln_c, bias_ln_c [H]); see cells/layer_norm.hpp.
    bool layer_norm = false;
    // LSTM full gate recurrence (Greff's FGR): the gates also see the previous step's i, f, o through
    // weight_gates [3H, 3H]; those activations are a third state (width 3H). See cells/full_gate.hpp.
    bool full_gate_recurrence = false;
    // Heads of the xLSTM cells (sLSTM: block-diagonal recurrent weights, one (4*dh, dh) block per head; mLSTM: one
    // matrix memory per head); hidden_size must be a multiple. 1 for every other cell.
    int num_heads = 1;
    std::uint64_t seed = 0;             // parameter initialisation and dropout masks
    Backend backend = Backend::Cpu;     // where the sequence loops run (not part of a saved model)
};

// One named parameter tensor inside the layer's parameter slab.
struct ParamInfo {
    std::string name;                   // torch.nn name, e.g. "weight_hh_l1_reverse"
    std::vector<std::int64_t> shape;    // torch.nn shape
    std::size_t offset = 0;             // into the parameter (and gradient) slab, in elements
    std::size_t size = 0;               // number of elements
};

// Number of gate rows per hidden unit: LSTM 4, GRU 3, RNN 1 (the registry row's `gates`).
int gate_count(CellKind kind);

// Validates a configuration; throws std::invalid_argument naming the offending field.
void validate(const LayerConfig& config);

// The instruction set the library's kernels were compiled for: "avx512", "avx2" or "baseline".
const char* instruction_set();

// Threads rnnkit's kernels may use (OpenMP), process-wide: concurrent calls from several threads share this
// budget (each takes a fair share, at least one, and waits while none is free), so they never run more kernel
// threads than this in total. Default: OMP_NUM_THREADS, else the CPUs. 1 when built without OpenMP.
// Results do not depend on it (training is bitwise identical on any thread count).
void set_num_threads(int n);
int get_num_threads();

// Scratch memory the kernels keep between calls for the calling thread (packed weights, a sequence's
// projections and gradient buffers; about the size of a layer's weights plus one batch's activations), so
// that repeated calls take no fresh pages: its size in bytes, and giving it back (the next call allocates
// again). Other threads' scratch is theirs to release.
std::size_t scratch_bytes();
void release_scratch();

}  // namespace v0
}  // namespace rnnkit
