// What a cell is: its traits, and the rows of one time step its per-unit math reads and writes.
// Shape legend and gradient rule: see rnnkit/config.hpp.
//
// A cell contributes math, a driver contributes scheduling. A cell header (cells/<cell>.hpp) holds a struct
// with `static constexpr CellTraits traits` and static RNNKIT_HD functions of (rows, unit j):
//   forward(UnitsForward, j)     the pointwise pass of one step for unit j of one batch row
//   backward(UnitsBackward, j)   its gradient, from the saved post-activation gates (haste-style)
// and, when the traits ask for them:
//   forward_gates / backward_mid   the first phase of a cell whose recurrent product stays apart (GRU)
//   extra_grad(UnitsBackward, j)   the gradient of the extra [extra_rows, H] parameter (peepholes)
// Drivers (reference/, cpu/, later cuda/) call them inside their loops: a CPU driver inside
// `#pragma omp simd` over the units a thread owns, a CUDA kernel with one thread per unit.
#pragma once

#include <type_traits>
#include <utility>

#include "cells/activations.hpp"
#include "rnnkit/config.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// kMaxStates (rnnkit/config.hpp): the most state tensors a cell carries; state 0 is h, the step's output.

// How the previous output enters the gates.
enum class Recurrence {
    Dense,          // h_prev R^T with a full R [G, H] (LSTM, GRU, RNN)
    BlockDiagonal,  // one dense block per head (sLSTM)
    Diagonal,       // elementwise (IndRNN)
    None,           // no recurrent matrix (minGRU, mLSTM's parallel form)
};

struct CellTraits {
    int gates;        // gate blocks of H rows in W [G, I] and R [G, H]: G = gates * H
    int saved;        // blocks of H columns saved per (t, b) for backward, >= gates; the first `gates` blocks
                      // hold the gates (post-activation after forward); the rest hold cell-specific terms
    int states;       // state tensors, h first
    Recurrence recurrence;
    // The recurrent product h_rec R^T is kept apart from the input projection, in a [B, G] row, and the cell
    // combines it (with b_hh) itself; the last gate's recurrent term q is saved in block `gates` and its
    // gradient dq written there (GRU: r multiplies it). Otherwise the product and b_hh add into the gates.
    bool recurrent_apart;
    // The last gate's recurrent product runs on a vector the cell computes in the step (saved block `gates`):
    // forward_gates, then the product, then forward; backward_mid after its backward product (GRU without
    // linear_before_reset: R_n (r * h)).
    bool mid_step_product;
    bool cross_unit_reduction;  // the step reduces across units (layer normalisation): a team must meet
    int extra_rows;             // rows of the extra parameter [extra_rows, H] (peepholes: 3), 0 if none
};

// A layer's options as its cell reads them at run time (filled from LayerConfig by the registry row's
// `configure`, cells/registry.cpp). Cells with a fixed layout ignore what does not concern them.
struct CellOptions {
    int gates = 0;                  // gate blocks of H rows in W, R and the biases (the layer's G = gates * H)
    int states = 1;                 // state tensors (h first)
    int saved = 0;                  // blocks of H columns saved per (t, b)
    bool general = false;           // a non-default option is set: the row runs its general cell
    Nonlinearity activation{Nonlinearity::Tanh};            // candidate (LSTM, GRU), nonlinearity (RNN)
    Nonlinearity recurrent_activation{Nonlinearity::Sigmoid};  // gates
    Nonlinearity input_activation{Nonlinearity::Tanh};      // LSTM candidate: activation, or linear (NIAF)
    Nonlinearity output_activation{Nonlinearity::Tanh};     // LSTM cell output: activation, or linear (NOAF)
    double clip = 0.0;              // LSTM cell_clip on the inputs of the activations (0: off)
    int slot[4] = {0, 1, 2, 3};     // LSTM: the block of gate i, f, g, o among the G rows, -1 when removed
    bool coupled = false;           // LSTM: i = 1 - f
    bool linear_before_reset = true;  // GRU
    double recurrent_clip = 0.0;    // IndRNN: |u| <= recurrent_clip (0: off)
    bool layer_norm = false;        // LSTM, GRU: the layer-normalised cell (cells/layer_norm.hpp)
    bool full_gate = false;         // LSTM: full gate recurrence (cells/full_gate.hpp)
    int num_heads = 1;              // sLSTM, mLSTM: heads (H / num_heads units each)
    int gate_rows = 0;              // rows of W when not gates * H (mLSTM: 4H + 2 heads), else 0
};

// act(x) for any Nonlinearity (a run-time switch; the fixed cells call sigmoid/tanh_ directly).
template <class S>
RNNKIT_HD S activate(const Nonlinearity& a, S x) {
    switch (a.kind) {
        case Nonlinearity::Tanh: return tanh_(x);
        case Nonlinearity::Sigmoid: return sigmoid(x);
        case Nonlinearity::Relu: return x > S(0) ? x : S(0);
        case Nonlinearity::Linear: return x;
        case Nonlinearity::Softsign: return x / (S(1) + (x < S(0) ? -x : x));
        case Nonlinearity::Softplus: {  // max(x, 0) + log(1 + e^-|x|)
            const S ax = x < S(0) ? -x : x;
            return (x > S(0) ? x : S(0)) + S(std::log1p(double(exp_(-ax))));
        }
        case Nonlinearity::Elu: return x > S(0) ? x : S(a.alpha) * (exp_(x) - S(1));
        case Nonlinearity::HardSigmoid: {
            const S v = S(a.alpha) * x + S(a.beta);
            return v < S(0) ? S(0) : (v > S(1) ? S(1) : v);
        }
        case Nonlinearity::LeakyRelu: return x > S(0) ? x : S(a.alpha) * x;
        case Nonlinearity::ScaledTanh: return S(a.alpha) * tanh_(S(a.beta) * x);
    }
    return x;
}

// act'(x) from y = act(x): every activation above has a derivative that is a function of its output.
template <class S>
RNNKIT_HD S activate_grad(const Nonlinearity& a, S y) {
    switch (a.kind) {
        case Nonlinearity::Tanh: return S(1) - y * y;
        case Nonlinearity::Sigmoid: return y * (S(1) - y);
        case Nonlinearity::Relu: return y > S(0) ? S(1) : S(0);
        case Nonlinearity::Linear: return S(1);
        case Nonlinearity::Softsign: {
            const S r = S(1) - (y < S(0) ? -y : y);
            return r * r;
        }
        case Nonlinearity::Softplus: return S(1) - exp_(-y);
        case Nonlinearity::Elu: return y > S(0) ? S(1) : y + S(a.alpha);
        case Nonlinearity::HardSigmoid: return y > S(0) && y < S(1) ? S(a.alpha) : S(0);
        case Nonlinearity::LeakyRelu: return y > S(0) ? S(1) : S(a.alpha);
        case Nonlinearity::ScaledTanh: {
            const S t = y / S(a.alpha);
            return S(a.alpha) * S(a.beta) * (S(1) - t * t);
        }
    }
    return S(1);
}

// The activations a cell template runs: Fixed<> the classic ones inline (sigmoid gates, tanh candidate), Runtime
// the layer's (CellOptions) through the switch above.
struct FixedActs {
    template <class S> static RNNKIT_HD S gate(const CellOptions*, S x) { return sigmoid(x); }
    template <class S> static RNNKIT_HD S dgate(const CellOptions*, S y) { return y * (S(1) - y); }
    template <class S> static RNNKIT_HD S cand(const CellOptions*, S x) { return tanh_(x); }
    template <class S> static RNNKIT_HD S dcand(const CellOptions*, S y) { return S(1) - y * y; }
};
struct RuntimeActs {
    template <class S> static RNNKIT_HD S gate(const CellOptions* o, S x) { return activate(o->recurrent_activation, x); }
    template <class S> static RNNKIT_HD S dgate(const CellOptions* o, S y) { return activate_grad(o->recurrent_activation, y); }
    template <class S> static RNNKIT_HD S cand(const CellOptions* o, S x) { return activate(o->activation, x); }
    template <class S> static RNNKIT_HD S dcand(const CellOptions* o, S y) { return activate_grad(o->activation, y); }
};

// The layout a driver uses: a cell whose blocks depend on the options has static gate_blocks/saved_blocks.
template <class Cell, class = void>
struct HasRuntimeLayout : std::false_type {};
template <class Cell>
struct HasRuntimeLayout<Cell, std::void_t<decltype(Cell::gate_blocks(std::declval<const CellOptions&>()))>>
    : std::true_type {};
template <class Cell>
int gate_blocks(const CellOptions& o) {
    if constexpr (HasRuntimeLayout<Cell>::value) return Cell::gate_blocks(o);
    else return Cell::traits.gates;
}
template <class Cell>
int saved_blocks(const CellOptions& o) {
    if constexpr (HasRuntimeLayout<Cell>::value) return Cell::saved_blocks(o);
    else return Cell::traits.saved;
}

// One batch row of one time step, as forward sees it. Every pointer is the row's unit 0; the cell reads and
// writes unit j.
template <class S>
struct UnitsForward {
    S* gates;                    // [saved*H] in: gate pre-activations (x W^T + b_ih, + h R^T + b_hh unless
                                 //   recurrent_apart); out: what backward needs (post-activation gates, ...)
    const S* rec;                // [G] h_rec R^T (recurrent_apart cells), else nullptr
    const S* bias_hh;            // [G] b_hh (recurrent_apart cells; zeros without bias), else nullptr
    const S* h_rec;              // [H] the recurrent input: h_prev, times the mask under recurrent dropout
    const S* prev[kMaxStates];   // [H] each: the states before the step
    S* next[kMaxStates];         // [H] each: the states after the step
    S* y;                        // [H] the output row (the new h)
    const S* extra;              // [extra_rows, H] the extra parameter (zeros when the layer has none)
    const CellOptions* opt;      // the layer's options
    int H;
};

// One batch row of one time step, as backward sees it (after forward, in reverse time order).
template <class S>
struct UnitsBackward {
    const S* gates;              // [saved*H] what forward saved
    S* dgates;                   // [saved*H] out (=): gradients w.r.t. the gate pre-activations (and dq)
    const S* dy;                 // [H] gradient w.r.t. this step's output
    const S* dh;                 // [H] gradient w.r.t. h after the step, carried from later steps
    S* dh_prev;                  // [H] out (=): the part of d h_prev that does not pass through R
    S* dstate[kMaxStates];       // [H] states 1..: in d state after the step, out d state before it
    const S* prev[kMaxStates];   // [H] the states before the step
    const S* next[kMaxStates];   // [H] the states after the step
    const S* hmask;              // [H] the recurrent dropout mask row, or nullptr (h_rec = h_prev * hmask)
    const S* extra;              // [extra_rows, H] the extra parameter (zeros when the layer has none)
    S* dextra;                   // [extra_rows, H] +=: its gradient (extra_grad only)
    const S* dmid;               // [H] the mid-step product's gradient dq R_last (backward_mid only)
    S* drec;                     // [H] gradient w.r.t. h_rec (backward_mid only): += unmasked, = masked
    bool masked;                 // recurrent dropout: drec is a separate buffer (=) rather than d h_prev (+=)
    const CellOptions* opt;      // the layer's options
    int H;
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
