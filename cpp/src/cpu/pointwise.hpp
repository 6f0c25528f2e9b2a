// Row helpers of the CPU sequence driver: copies, the input projection of a thread's units, masks.
// The activations themselves are in cells/activations.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cells/activations.hpp"
#include "cpu/gemm.hpp"
#include "cpu/packed_matrix.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
inline void copy_row(S* dst, const S* src, int n) {
    std::memcpy(dst, src, sizeof(S) * static_cast<std::size_t>(n));
}

template <class S>
inline void zero_row(S* dst, int n) {
    std::memset(dst, 0, sizeof(S) * static_cast<std::size_t>(n));
}

// pre[rows, G] (row stride ld) = x[rows, I] W^T + bW + bR for the columns g*H + [u0, u1) of every gate, the
// input projection of many time steps at once, computed by the calling thread for the units it owns.
// WT is the operand W^T [I, G] with gate width H (see weights.hpp); G = gates * H.
template <class S>
inline void project_units(S* pre, int ld, const S* x, const WeightOperand<S>& WT, const S* bW, const S* bR,
                          int rows, int I, int G, int H, UnitRange u) {
    WT.multiply_units(pre, ld, x, I, rows, u.u0, u.u1, false);
    if (bW == nullptr && bR == nullptr) return;
    for (int r = 0; r < rows; ++r) {
        S* p = pre + static_cast<std::size_t>(r) * ld;
        for (int g0 = 0; g0 < G; g0 += H)
#pragma omp simd
            for (int j = g0 + u.u0; j < g0 + u.u1; ++j) p[j] += (bW ? bW[j] : S(0)) + (bR ? bR[j] : S(0));
    }
}

// pre [T*B, G] (row stride ld) = x W^T + bW (+ bR)
template <class S>
void project_all(S* pre, int ld, const S* x, const S* W, const S* bW, const S* bR, int rows, int I, int G) {
    gemm<S>(false, true, rows, G, I, S(1), x, I, W, I, S(0), pre, ld);
    if (!bW && !bR) return;
    for (int r = 0; r < rows; ++r) {
        S* p = pre + std::size_t(r) * ld;
#pragma omp simd
        for (int j = 0; j < G; ++j) p[j] += (bW ? bW[j] : S(0)) + (bR ? bR[j] : S(0));
    }
}

// The gradients of a layer whose gates read the input only (minGRU, minLSTM, mLSTM), from dpre [T*B, G] (row
// stride ld): dx (+)= dpre W, dW += dpre^T x, d b_ih and d b_hh += column sums. The twin of project_all.
template <class S, class Args>
void input_weight_grads(const Args& a, const S* dpre, int G, int ld) {
    const int TB = a.T * a.B, I = a.I;
    gemm<S>(false, false, TB, I, G, S(1), dpre, ld, a.W, I, a.dx_accumulate ? S(1) : S(0), a.dx, I);
    gemm<S>(true, false, G, I, TB, S(1), dpre, ld, a.x, I, S(1), a.dW, I);
    if (a.dbW) add_column_sums(a.dbW, dpre, TB, G, ld);
    if (a.dbR) add_column_sums(a.dbR, dpre, TB, G, ld);
}

// Whether a sequence's time loop runs on a team of threads that own hidden units (one barrier per step):
// when a step has enough arithmetic to repay the barrier and the units split into at least two blocks.
template <class S>
inline bool team_loop(int B, int H, int G) {
    return long(B) * H * G >= (1L << 16) && H > panel_width<S>();
}

// Initial state into a slot: a copy of init, or zeros.
template <class S>
inline void set_state(S* slot, const S* init, int n) {
    if (init)
        copy_row(slot, init, n);
    else
        zero_row(slot, n);
}

// Recurrent dropout: the recurrent products read h * mask, written to dst for batch rows [0, B) and units
// [u0, u1) (the calling thread's own units); dst, h, mask are [B, H].
template <class S>
inline void mask_units(S* dst, const S* h, const S* mask, int B, int H, UnitRange u) {
    for (int b = 0; b < B; ++b) {
        const std::size_t row = std::size_t(b) * H;
#pragma omp simd
        for (int j = u.u0; j < u.u1; ++j) dst[row + j] = h[row + j] * mask[row + j];
    }
}

// All T recurrent inputs for the weight gradient: h_prev_all itself, or h_prev_all * mask in `buffer`.
template <class S>
inline const S* recurrent_inputs(std::vector<S>& buffer, const S* h_prev_all, const S* mask, int T, std::size_t BH) {
    if (!mask) return h_prev_all;
    buffer.resize(std::size_t(T) * BH);
    for (int t = 0; t < T; ++t)
        for (std::size_t i = 0; i < BH; ++i) buffer[t * BH + i] = h_prev_all[t * BH + i] * mask[i];
    return buffer.data();
}

// dh += drec * mask for batch rows [0, B) and units [u0, u1): the gradient w.r.t. the masked recurrent input,
// carried back to the state. All three are [B, H].
template <class S>
inline void add_masked_units(S* dh, const S* drec, const S* mask, int B, int H, UnitRange u) {
    for (int b = 0; b < B; ++b) {
        const std::size_t row = std::size_t(b) * H;
#pragma omp simd
        for (int j = u.u0; j < u.u1; ++j) dh[row + j] += drec[row + j] * mask[row + j];
    }
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
