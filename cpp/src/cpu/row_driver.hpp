// The CPU sequence driver for cells whose step reduces across all units of a row (layer normalisation,
// cells/layer_norm.hpp): threads own batch rows instead of hidden units, so a row's whole step (its recurrent
// product, normalisations and gates) stays on one thread and the time loop needs no barrier. Parallel when the
// batch has rows for several threads; one sequence runs on one thread.
//   forward:   pre = x W^T for all (t, b) (one product);  per thread, per step: rec = h_rec R^T for its rows,
//              Cell::forward_row per row
//   backward:  per thread, per step: Cell::backward_row per row (d(x W^T), d(h R^T), bias and gain gradients),
//              dh_prev += d(h R^T) R for its rows;  then dx, dW, dR as products over all (t, b)
// Shape legend and gradient rule: see rnnkit/config.hpp; time/slot layout, lengths, masks: see sequence.hpp.
#pragma once

#include <algorithm>
#include <vector>

#include "cells/full_gate.hpp"
#include "cells/layer_norm.hpp"
#include "cpu/gemm.hpp"
#include "cpu/microkernels.hpp"
#include "cpu/packed_matrix.hpp"
#include "cpu/pointwise.hpp"
#include "cpu/team.hpp"
#include "cpu/workspace.hpp"
#include "rnnkit/config.hpp"
#include "sequence.hpp"

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace cpu {

// Batch rows go in groups of one register tile of the packed products (microkernels.hpp); threads own whole
// groups, and every group's products are separate calls over weights packed once per sequence. A row's
// products and gradients thus never depend on how many threads share the batch (bitwise identical training on
// 1, 2 or 3 threads), and a group costs one pass over the weights, as the tile loop of one big call would.
template <class S>
constexpr int row_group() {
    return microkernels::rows_per_tile<S>();
}

// C[rows, N] (+)= A[rows, K] · W for the calling thread's rows, one call per group of rows (groups start at
// multiples of row_group<S>() counted from row 0 of A): inside a team each thread runs its own product,
// outside one the product is split over columns.
template <class S>
void rows_times(const WeightOperand<S>& W, int N, S* C, int ldc, const S* A, int lda, int rows, bool accumulate) {
    constexpr int RG = row_group<S>();
    const bool team = team_size() > 1;
    for (int r = 0; r < rows; r += RG) {
        const int n = std::min(RG, rows - r);
        if (team)
            W.multiply_units(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, n, 0, N, accumulate);
        else
            W.multiply(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, n, accumulate);
    }
}

// The row cells' extra parameters (RowAux order) and the sizes of their gradients, from a driver's arguments.
template <class S>
struct RowParams {
    const S* aux[kAuxCount] = {};
    S* daux[kAuxCount] = {};
    std::size_t size[kAuxCount] = {};
    std::vector<S> zeros;  // stands in for absent peepholes
    RowParams(const S* const* ln, S* const* dln, const S* extra, S* dextra, const S* W_gates, S* dW_gates, int H, int G)
        : zeros(3 * std::size_t(H), S(0)) {
        const std::size_t sizes[kAuxCount] = {std::size_t(G), std::size_t(G), std::size_t(H), std::size_t(H),
                                              3 * std::size_t(H), 9 * std::size_t(H) * H};
        for (int k = 0; k < kAuxCount; ++k) size[k] = sizes[k];
        for (int k = 0; k < 4; ++k) aux[k] = ln[k], daux[k] = dln ? dln[k] : nullptr;
        aux[kPeephole] = extra ? extra : zeros.data();
        daux[kPeephole] = extra ? dextra : nullptr;
        aux[kGateWeights] = W_gates;
        daux[kGateWeights] = dW_gates;
    }
};

template <class Cell, class S>
void sequence_forward_rows(const SeqForward<S>& a) {
    constexpr int NS = Cell::traits.states;
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const int G = Cell::traits.gates * H, LD = Cell::traits.saved * H;
    const std::size_t BH = std::size_t(B) * H, BL = std::size_t(B) * LD;
    int SW[kMaxStates] = {};  // state widths
    for (int k = 0; k < NS; ++k) SW[k] = Cell::state_width(k, H);
    const RowParams<S> params(a.ln, nullptr, a.extra, nullptr, a.W_gates, nullptr, H, G);
    std::vector<S> inference_saved(a.training ? 0 : std::size_t(T) * BL), zeros(std::size_t(G), S(0));
    S* saved = a.training ? a.gates : inference_saved.data();  // [T, B, saved*H]
    gemm<S>(false, true, T * B, G, I, S(1), a.x, I, a.W, I, S(0), saved, LD);  // x W^T into the first G columns
    const S* bW = a.bW ? a.bW : zeros.data();
    const S* bR = a.bR ? a.bR : zeros.data();
    const int init = initial_slot(T, a.reverse, a.training);
    for (int k = 0; k < NS; ++k) set_state(a.state[k] + init * B * SW[k], a.state0[k], B * SW[k]);
    Scratch<S> mem;
    const WeightOperand<S> Rt = WeightOperand<S>::transposed(a.R, H, H, G, true, mem);  // R^T [H, G], packed once

#pragma omp parallel if (B >= 2 * row_group<S>())
    {
        const UnitRange rows_of = my_units(B, row_group<S>());  // this thread's batch rows (whole groups)
        const int nb = rows_of.u1 - rows_of.u0;
        std::vector<S> rec(std::size_t(std::max(nb, 1)) * G), masked(a.hmask ? std::size_t(nb) * H : 0);
        for (int s = 0; s < T && nb > 0; ++s) {
            const Step st = step_at(s, T, a.reverse, a.training);
            const int active = std::min(std::max(active_rows(a.lengths, B, st.t), rows_of.u0), rows_of.u1) - rows_of.u0;
            const S* h_prev = a.state[0] + st.prev * BH + std::size_t(rows_of.u0) * H;
            const S* h_rec = h_prev;
            if (a.hmask) {
                for (std::size_t k = 0; k < masked.size(); ++k) masked[k] = h_prev[k] * a.hmask[rows_of.u0 * std::size_t(H) + k];
                h_rec = masked.data();
            }
            rows_times(Rt, G, rec.data(), G, h_rec, H, active, false);
            for (int b = rows_of.u0; b < rows_of.u1; ++b) {
                RowForward<S> rf{};
                rf.saved = saved + (std::size_t(st.t) * B + b) * LD;
                rf.rec = rec.data() + std::size_t(b - rows_of.u0) * G;
                for (int q = 0; q < NS; ++q) {
                    rf.prev[q] = a.state[q] + (st.prev * B + std::size_t(b)) * SW[q];
                    rf.next[q] = a.state[q] + (st.cur * B + std::size_t(b)) * SW[q];
                }
                rf.y = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                if (!valid(a.lengths, b, st.t)) {  // the state passes through, the output is 0
                    for (int q = 0; q < NS; ++q) copy_row(rf.next[q], rf.prev[q], SW[q]);
                    zero_row(rf.y, H);
                    continue;
                }
                rf.bW = bW;
                rf.bR = bR;
                for (int k = 0; k < kAuxCount; ++k) rf.aux[k] = params.aux[k];
                rf.opt = a.opt;
                rf.H = H;
                Cell::forward_row(rf);
            }
        }
    }
    const int fin = final_slot(T, a.reverse, a.training);
    for (int k = 0; k < NS; ++k)
        if (a.state_n[k]) copy_row(a.state_n[k], a.state[k] + fin * B * SW[k], B * SW[k]);
}

template <class Cell, class S>
void sequence_backward_rows(const SeqBackward<S>& a) {
    constexpr int NS = Cell::traits.states;
    const int T = a.T, B = a.B, I = a.I, H = a.H, TB = T * B;
    const int G = Cell::traits.gates * H, LD = Cell::traits.saved * H;
    const std::size_t BH = std::size_t(B) * H, TBG = std::size_t(TB) * G;
    Scratch<S> mem;
    // d(x W^T), d(h R^T), d b_ih, d b_hh per (t, b): [T, B, G] each
    S* dxp = mem.take(4 * TBG);
    S *drec = dxp + TBG, *dbw = drec + TBG, *dbr = dbw + TBG;
    int SW[kMaxStates] = {};  // state widths
    std::size_t carried = 2 * BH;
    for (int k = 0; k < NS; ++k) carried += k ? std::size_t(B) * (SW[k] = Cell::state_width(k, H)) : 0;
    SW[0] = H;
    S* carry = mem.take(carried);  // dh, dh_next [B, H], then states 1.. [B, width]
    S* dh = carry;
    S* dh_next = dh + BH;
    S* dstate[kMaxStates] = {};
    for (int k = 1, at = int(2 * BH); k < NS; at += B * SW[k], ++k) dstate[k] = carry + at;
    for (int k = 0; k < NS; ++k) set_state(k ? dstate[k] : dh, a.dstate_n[k], B * SW[k]);
    const RowParams<S> params(a.ln, a.dln, a.extra, a.dextra, a.W_gates, a.dW_gates, H, G);

    // The extra parameters' gradients: one share per block of rows (whole groups, at most 16 blocks: a share
    // of a full-gate cell's holds 9 H^2 values), summed in block order at the end. Threads own whole blocks.
    constexpr int RG = row_group<S>();
    const int block_rows = RG * ((B + 16 * RG - 1) / (16 * RG));
    const int blocks = (B + block_rows - 1) / block_rows;
    std::size_t offset[kAuxCount] = {}, total = 0;
    for (int k = 0; k < kAuxCount; ++k)
        if (params.daux[k]) offset[k] = total, total += params.size[k];
    std::vector<std::vector<S>> partials(static_cast<std::size_t>(blocks));
    const WeightOperand<S> Rd = WeightOperand<S>::direct(a.R, H, G, H, mem, true);  // R [G, H], packed once
#pragma omp parallel if (B >= 2 * RG)
    {
        const UnitRange rows_of = my_units(B, block_rows);
        const int nb = rows_of.u1 - rows_of.u0;
        std::vector<S> scratch(2 * std::size_t(G)), dhr(std::size_t(std::max(nb, 1)) * H);
        for (int q = rows_of.u0 / block_rows; q * block_rows < rows_of.u1; ++q) partials[std::size_t(q)].assign(total, S(0));
        S *dh_t = dh, *dh_n = dh_next;
        for (int s = T - 1; s >= 0 && nb > 0; --s) {
            const Step st = step_at(s, T, a.reverse, true);
            const int active = std::min(std::max(active_rows(a.lengths, B, st.t), rows_of.u0), rows_of.u1) - rows_of.u0;
            for (int b = rows_of.u0; b < rows_of.u1; ++b) {
                const std::size_t tb = std::size_t(st.t) * B + b;
                RowBackward<S> rb{};
                rb.dh = dh_t + std::size_t(b) * H;
                rb.dh_prev = dh_n + std::size_t(b) * H;
                rb.dx_proj = dxp + tb * G;
                rb.drec = drec + tb * G;
                rb.dbW = dbw + tb * G;
                rb.dbR = dbr + tb * G;
                if (!valid(a.lengths, b, st.t)) {  // the state passed through: so do its gradients
                    for (S* d : {rb.dx_proj, rb.drec, rb.dbW, rb.dbR}) zero_row(d, G);
                    copy_row(rb.dh_prev, rb.dh, H);
                    continue;
                }
                rb.saved = a.gates + tb * LD;
                rb.dy = a.dy + tb * a.ldy;
                for (int q = 0; q < NS; ++q) {
                    rb.prev[q] = a.state[q] + (st.prev * B + std::size_t(b)) * SW[q];
                    rb.next[q] = a.state[q] + (st.cur * B + std::size_t(b)) * SW[q];
                    rb.dstate[q] = q ? dstate[q] + std::size_t(b) * SW[q] : nullptr;
                }
                S* share = partials[std::size_t(b / block_rows)].data();  // this row's block's share
                for (int k = 0; k < kAuxCount; ++k)
                    rb.aux[k] = params.aux[k], rb.daux[k] = params.daux[k] ? share + offset[k] : nullptr;
                rb.scratch = scratch.data();
                rb.opt = a.opt;
                rb.H = H;
                Cell::backward_row(rb);
            }
            if (active > 0) {  // dh_prev += d(h_rec R^T) R (times the dropout mask)
                const S* dr = drec + (std::size_t(st.t) * B + rows_of.u0) * G;
                S* out = dh_n + std::size_t(rows_of.u0) * H;
                if (!a.hmask) {
                    rows_times(Rd, H, out, H, dr, G, active, true);
                } else {
                    rows_times(Rd, H, dhr.data(), H, dr, G, active, false);
                    const S* m = a.hmask + std::size_t(rows_of.u0) * H;
                    for (std::size_t k = 0; k < std::size_t(active) * H; ++k) out[k] += dhr[k] * m[k];
                }
            }
            std::swap(dh_t, dh_n);
        }
    }
    for (const std::vector<S>& part : partials)  // in block order, whichever thread owned the block
        for (int k = 0; k < kAuxCount; ++k)
            if (params.daux[k])
                for (std::size_t j = 0; j < params.size[k]; ++j) params.daux[k][j] += part[offset[k] + j];
    if (T % 2) std::swap(dh, dh_next);  // where the last swap left the gradient w.r.t. h0
    for (int k = 0; k < NS; ++k)
        if (a.dstate0[k]) copy_row(a.dstate0[k], k ? dstate[k] : dh, B * SW[k]);

    // Weight gradients over all (t, b) at once.
    std::vector<S> masked_all;
    const S* h_rec_all = recurrent_inputs(masked_all, a.state[0] + (a.reverse ? BH : 0), a.hmask, T, BH);  // [T, B, H]
    gemm<S>(false, false, TB, I, G, S(1), dxp, G, a.W, I, a.dx_accumulate ? S(1) : S(0), a.dx, I);  // dx (+)= dxp W
    gemm<S>(true, false, G, I, TB, S(1), dxp, G, a.x, I, S(1), a.dW, I);             // dW += dxp^T x
    gemm<S>(true, false, G, H, TB, S(1), drec, G, h_rec_all, H, S(1), a.dR, H);      // dR += drec^T h_rec
    if (a.dbW) add_column_sums(a.dbW, dbw, TB, G, G);
    if (a.dbR) add_column_sums(a.dbR, dbr, TB, G, G);
}

}  // namespace cpu
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
