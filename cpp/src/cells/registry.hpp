// The cell registry inside the library: each row is the public CellInfo (rnnkit/cells.hpp) plus the entry
// points of every backend's sequence driver for that cell. This is the backend seam: the layer stack calls
// sequence_forward/sequence_backward with a backend, and the row of the config's cell kind routes the call.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "rnnkit/cells.hpp"
#include "sequence.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

constexpr int kBackendCount = 3;  // Cpu, Reference, Cuda (see rnnkit::Backend)

template <class S>
using ForwardFn = void (*)(const SeqForward<S>&);
template <class S>
using BackwardFn = void (*)(const SeqBackward<S>&);

// One backend's entry points per dtype, indexed by Backend; nullptr where the backend lacks the cell.
template <class S>
struct Drivers {
    ForwardFn<S> forward[kBackendCount] = {};
    BackwardFn<S> backward[kBackendCount] = {};
};

struct CellSpec {
    CellInfo info;
    // The layer's options as its cell reads them (layout, activations); `general` set when they need the
    // row's general cell, which the reference backend does not have.
    CellOptions (*configure)(const LayerConfig&) = nullptr;
    Drivers<float> f32;
    Drivers<double> f64;
    // Features of state k per (layer, direction, row) when not the default (H; h: proj_size with a projection).
    int (*state_width)(const LayerConfig&, int k) = nullptr;
    // Slots a training forward keeps of state k over T steps, when not T + 1 (sequence.hpp's layout).
    int (*training_slots)(const LayerConfig&, int k, int T) = nullptr;
    // The row's own initial values for parameter `name` (H rows of gates etc.), after the uniform draw: the
    // xLSTM cells' gate biases. values has the parameter's size.
    void (*initialize)(const LayerConfig&, const std::string& name, std::vector<double>& values,
                       std::mt19937_64& engine) = nullptr;
    const Drivers<float>& drivers(float*) const { return f32; }
    const Drivers<double>& drivers(double*) const { return f64; }
};

const std::vector<CellSpec>& cell_table();  // every row, a kind's value is its index
const CellSpec& cell_spec(CellKind kind);   // throws std::invalid_argument for an unregistered kind
int training_slots(const LayerConfig& config, int k, int T);  // the row's, or T + 1

// The seam: one direction of one layer over a sequence, on `backend`, for the cell a.cell.
// Throws std::invalid_argument when the backend lacks the cell (or was not built).
template <class S>
void sequence_forward(Backend backend, const SeqForward<S>& a);
template <class S>
void sequence_backward(Backend backend, const SeqBackward<S>& a);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
