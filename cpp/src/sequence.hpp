// One direction of one recurrent layer over a whole sequence: the arguments every backend's driver takes,
// and the time/slot bookkeeping they share.
// Shape legend and gradient rule: see rnnkit/config.hpp.
//
// Time and state slots. Time t runs 0..T-1; a forward direction processes t = 0, 1, ..., a reverse
// direction t = T-1, ..., 0. Training keeps every state (h, c, ...) in [T+1, B, H] slots, laid out so the state
// *before* time t and the state *after* it are neighbours whatever the direction:
//   forward:  h_prev(t) = slot t,     h(t) = slot t+1   (initial state in slot 0, final in slot T)
//   reverse:  h_prev(t) = slot t+1,   h(t) = slot t     (initial state in slot T, final in slot 0)
// so the recurrent weight gradient is one GEMM over slots [rev, rev+T). Inference keeps two slots.
//
// Recurrent (variational) dropout: the recurrent matrices see h_prev * hmask, the same [B, H] mask at
// every step (Gal & Ghahramani 2016, as Keras's recurrent_dropout); the carried state itself is not masked.
//
// Projection (LSTM proj_size): state 0 is h = m W_hr^T of width P, every other state is H wide; a state slot
// of state k is [B, width(k)].
//
// Zoneout: after a valid step, a state unit keeps its previous value where the step's mask is 1 (training) or
// mixes p prev + (1 - p) new (inference); like an ended row, but per unit and step. A cell's backward then
// sees (1 - m) of the gradient w.r.t. the new state, and m of it passes to the previous state directly.
//
// Variable lengths (packed-sequence semantics): step t is valid for batch row b when t < lengths[b].
// An invalid step leaves the state unchanged (h(t) = h_prev(t)) and outputs 0, so a forward
// direction ends at its last valid step and a reverse direction starts there from the initial state.
#pragma once

#include <cstddef>

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// The arguments of one direction of one layer over a whole sequence, as every backend's driver takes them
// (cpu/driver.hpp, reference/, later cuda/): the seam between the layer stack (nn/recurrent.cpp) and a
// backend. Which cell runs is `cell` (a registry row, cells/registry.hpp); its options ride along.
struct CellSpec;

template <class S>
struct SeqForward {
    const CellSpec* cell = nullptr;
    const CellOptions* opt = nullptr;  // the layer's options (layout, activations, ...)
    // outputs
    S* y = nullptr;          // [T, B, ldy]: this direction writes H columns starting at y
    int ldy = 0;
    S* state[kMaxStates] = {};     // per state: training [T+1, B, H] slots; inference [2, B, H] scratch
    S* gates = nullptr;            // training [T, B, saved*H] what backward needs; inference unused
    S* state_n[kMaxStates] = {};   // per state: [B, H] final state, or nullptr
    // inputs
    const S* x = nullptr;    // [T, B, I]
    const S* state0[kMaxStates] = {};  // per state: [B, H] initial state, or nullptr (zeros)
    const S* W = nullptr;    // [G, I] weight_ih
    const S* R = nullptr;    // [G, H] weight_hh
    const S* bW = nullptr;   // [G] bias_ih or nullptr
    const S* bR = nullptr;   // [G] bias_hh or nullptr
    const S* extra = nullptr;      // [extra_rows, H] the cell's extra parameter (peepholes), or nullptr
    const int* lengths = nullptr;  // [B] in decreasing order, or nullptr
    const S* hmask = nullptr;      // [B, H] recurrent dropout mask (scaled), or nullptr
    // zoneout per state: training a [T, B, H] 0/1 mask (1: the unit keeps its previous value at t) or nullptr;
    // inference mixes by the probability: state = p prev + (1 - p) new
    const S* zoneout_mask[kMaxStates] = {};
    double zoneout_p[kMaxStates] = {};
    // projection (LSTM proj_size P > 0, torch semantics): the cell's output m [B, H] becomes h = m W_hr^T [B, P];
    // state 0 (h), y, x of the next layer and R's columns are P wide
    const S* W_hr = nullptr;  // [P, H] or nullptr
    S* m = nullptr;           // training [T, B, H] the cell outputs before the projection (kept for backward)
    const S* ln[4] = {};      // layer normalisation: γx [G], γh [G], γc [H], βc [H] (cells/layer_norm.hpp)
    const S* W_gates = nullptr;  // full gate recurrence [3H, 3H] (cells/full_gate.hpp), or nullptr
    int T = 0, B = 0, I = 0, H = 0, P = 0;  // P: h's width (proj_size, or H without a projection)
    bool reverse = false;
    bool training = true;
};

template <class S>
struct SeqBackward {
    const CellSpec* cell = nullptr;
    const CellOptions* opt = nullptr;
    // outputs
    S* dx = nullptr;          // [T, B, I]
    bool dx_accumulate = false;  // += (second direction) instead of =
    S* dstate0[kMaxStates] = {};  // per state: [B, H] (=), or nullptr
    S* dW = nullptr;          // [G, I]  +=
    S* dR = nullptr;          // [G, H]  +=
    S* dbW = nullptr;         // [G] or nullptr  +=
    S* dbR = nullptr;         // [G] or nullptr  +=
    S* dextra = nullptr;      // [extra_rows, H] or nullptr  +=
    // inputs
    const S* dy = nullptr;    // [T, B, ldy]: this direction reads H columns starting at dy
    int ldy = 0;
    const S* dstate_n[kMaxStates] = {};  // per state: [B, H] or nullptr (zeros)
    const S* gates = nullptr; // [T, B, saved*H] saved by the training forward
    const S* state[kMaxStates] = {};     // per state: [T+1, B, H] slots saved by the training forward
    const S* x = nullptr;     // [T, B, I]
    const S* W = nullptr;
    const S* R = nullptr;
    const S* extra = nullptr;
    const int* lengths = nullptr;
    const S* hmask = nullptr;  // [B, H] recurrent dropout mask used by the forward, or nullptr
    const S* zoneout_mask[kMaxStates] = {};  // [T, B, H] per state, the training forward's, or nullptr
    const S* W_hr = nullptr;  // [P, H] the projection, or nullptr
    S* dW_hr = nullptr;       // [P, H] +=
    const S* m = nullptr;     // [T, B, H] saved by the training forward
    const S* ln[4] = {};      // layer normalisation parameters, and their gradients (+=)
    S* dln[4] = {};
    const S* W_gates = nullptr;  // full gate recurrence, and its gradient (+=)
    S* dW_gates = nullptr;
    int T = 0, B = 0, I = 0, H = 0, P = 0;
    bool reverse = false;
};

// Time steps whose input projection inference computes at once (bounds inference memory).
constexpr int kInferenceChunk = 32;

// Step bookkeeping shared by all kernels.
struct Step {
    int t;      // time index
    int prev;   // slot of the state before t
    int cur;    // slot of the state after t
};
inline Step step_at(int s, int T, bool reverse, bool training) {
    int t = reverse ? T - 1 - s : s;
    if (training) return reverse ? Step{t, t + 1, t} : Step{t, t, t + 1};
    return Step{t, s & 1, (s + 1) & 1};
}
inline int initial_slot(int T, bool reverse, bool training) { return training && reverse ? T : 0; }
inline int final_slot(int T, bool reverse, bool training) {
    if (!training) return T & 1;
    return reverse ? 0 : T;
}
inline bool valid(const int* lengths, int b, int t) { return lengths == nullptr || t < lengths[b]; }

// Kernels receive lengths in decreasing order (Recurrent sorts a batch and restores the caller's order), so
// the rows still running at time t are the first active_rows(...) rows: a step's products cover only them.
inline int active_rows(const int* lengths, int B, int t) {
    if (lengths == nullptr) return B;
    int lo = 0, hi = B;  // lengths[0, lo) > t >= lengths[hi, B)
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (lengths[mid] > t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
