// The mLSTM cell (Beck et al. 2024, xLSTM, section 2.3): a matrix memory per head, written with an outer
// product and read with a query, exponential input gate and sigmoid forget gate (scalars per head), no
// recurrent weights: every gate reads the input only. For each head (dh = H / num_heads units):
//   q, k~, v, o~ = W x + b (rows q k v o, H each);  i~, f~ = W x + b (one row per head each)
//   k = k~ / sqrt(dh);   m = max(log σ(f~) + m_prev, i~)   (the stabiliser; the memory is scaled by e^-m)
//   f = exp(log σ(f~) + m_prev - m),  i = exp(i~ - m)
//   C = f C_prev + i k v^T   (dh x dh, C[a][b] = k[a] v[b], as xlstm)    n = f n_prev + i k
//   h~ = C^T q / (max(|n . q|, e^-m) + eps)   (eps 1e-6)               h = σ(o~) h~
// The stabiliser cancels in h~ except in the lower bound e^-m (the unstabilised max(|n . q|, 1)) and eps.
// States: h (H), C (num_heads dh dh), n (H), m (num_heads). Inference runs these equations step by step; training
// runs the equivalent chunkwise-parallel form (cpu/mlstm_driver.hpp), whose rows use the same m, so both forms
// give the same numbers.
// W's rows: q [0, H), k [H, 2H), v [2H, 3H), o [3H, 4H), i~ [4H, 4H + NH), f~ [4H + NH, 4H + 2 NH).
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

constexpr double kMlstmEps = 1e-6;
constexpr int kMlstmChunk = 64;  // steps of the chunkwise-parallel training form

struct MlstmCell {
    // saved blocks per (t, b): the projections (4H + 2 NH <= 6H columns), h~ [6H, 7H), m per head at 7H
    static constexpr CellTraits traits{4, 8, 4, Recurrence::None, false, false, false, 0};
    static int gate_rows(int H, int heads) { return 4 * H + 2 * heads; }
    static int state_width(int k, int H, int heads) {
        const int dh = H / heads;
        return k == 1 ? heads * dh * dh : k == 3 ? heads : H;
    }
    // Training slots of state k for T steps: h none (y has it), C, n and m at chunk boundaries.
    static int training_slots(int k, int T) { return k == 0 ? 1 : (T + kMlstmChunk - 1) / kMlstmChunk + 1; }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
