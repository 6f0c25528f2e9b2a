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
enum class CellKind : int { LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3 };

// The most state tensors a cell carries (LSTM 2: h, c; GRU and RNN 1; later cells up to 4), h first.
constexpr int kMaxStates = 4;

// Where a recurrent layer's sequence loops run: Cpu (thread team, packed weights; the default), Reference
// (single-threaded formulas, no packing: slow, the oracle the fast drivers are tested against), Cuda (a GPU
// build; none yet).
enum class Backend : int { Cpu = 0, Reference = 1, Cuda = 2 };
const char* to_string(Backend backend);
Backend parse_backend(const std::string& name);  // "cpu", "reference", "cuda"; throws std::invalid_argument

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

// Threads used by rnnkit's kernels (OpenMP); 1 when built without OpenMP.
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
