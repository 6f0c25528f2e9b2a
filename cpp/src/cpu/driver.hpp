// The CPU sequence driver: one direction of one layer over a whole sequence, for any cell with a dense
// recurrence. The cell (cells/<cell>.hpp) contributes the math of a unit; this file the scheduling, written
// once: the thread team owning hidden units, one barrier per step, chunked inference, packed weight operands,
// variable lengths (sorted by length), recurrent dropout masks, and the weight-gradient products after the
// time loop. Shape legend and gradient rule: see rnnkit/config.hpp; time/slot layout: see sequence.hpp.
//
// A step, for the hidden units [u0, u1) a thread owns:
//   forward:   gates[t] = x[t] W^T + b (all t of a chunk at once, before its steps)
//              gates[t] += h_rec R^T   (or rec = h_rec R^T apart, for recurrent_apart cells)
//              Cell::forward over the thread's units of every batch row;  barrier (h is read by all)
//   backward:  Cell::backward over the thread's units;  barrier (dgates of all units are read)
//              dh_prev += dgates R
// so only h (forward) and dgates (backward) cross threads.
#pragma once

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "cells/cell.hpp"
#include "cpu/packed_matrix.hpp"
#include "cpu/pointwise.hpp"
#include "cpu/team.hpp"
#include "cpu/workspace.hpp"
#include "sequence.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace cpu {

// Zoneout after a valid step of batch row b: state = m prev + (1 - m) new on the units [u0, u1).
template <class S>
void zoneout_forward(const SeqForward<S>& a, const UnitsForward<S>& uf, int t, int b, UnitRange u) {
    const std::size_t at = (std::size_t(t) * a.B + b) * a.H;
    for (int q = 0; q < kMaxStates; ++q) {
        if (!a.zoneout_mask[q] && a.zoneout_p[q] <= 0.0) continue;
        const S* m = a.zoneout_mask[q] ? a.zoneout_mask[q] + at : nullptr;
        const S p = S(a.zoneout_p[q]);
        for (int j = u.u0; j < u.u1; ++j) {
            const S keep = m ? m[j] : p;
            uf.next[q][j] = keep * uf.prev[q][j] + (S(1) - keep) * uf.next[q][j];
        }
        if (q == 0) copy_row(uf.y + u.u0, uf.next[0] + u.u0, u.u1 - u.u0);
    }
}

template <class Cell, class S>
void sequence_forward(const SeqForward<S>& a) {
    constexpr CellTraits tr = Cell::traits;
    static_assert(tr.recurrence != Recurrence::None && !tr.cross_unit_reduction,
                  "the CPU driver runs dense, block-diagonal (expanded to dense, registry.cpp) and diagonal "
                  "recurrences without cross-unit reductions");
    constexpr int NS = tr.states;
    constexpr bool apart = tr.recurrent_apart, mid = tr.mid_step_product;
    constexpr bool dense = tr.recurrence != Recurrence::Diagonal;  // block-diagonal arrives expanded
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const int G = gate_blocks<Cell>(*a.opt) * H, LD = saved_blocks<Cell>(*a.opt) * H;
    const std::size_t BH = std::size_t(B) * H, BL = std::size_t(B) * LD;
    const int chunk = a.training ? T : std::min(T, kInferenceChunk);
    // state widths: h is P wide (the projection's), every other state H
    const bool proj = a.W_hr != nullptr;
    const int P = proj ? a.P : H;
    const std::size_t BP = std::size_t(B) * P;
    int SW[kMaxStates];
    for (int k = 0; k < kMaxStates; ++k) SW[k] = k == 0 ? P : H;
    bool zoneout = false;
    for (int k = 0; k < NS; ++k) zoneout = zoneout || a.zoneout_mask[k] || a.zoneout_p[k] > 0.0;
    Scratch<S> mem;
    S* pre_base = a.training ? a.gates : mem.take(std::size_t(chunk) * BL);  // inference: [chunk, B, saved*H]
    S* rec = apart ? mem.take(std::size_t(B) * G) : nullptr;               // [B, G] h_rec R^T of one step
    S* masked = a.hmask ? mem.take(2 * BP) : nullptr;                       // [2, B, P] h * hmask, ping-pong
    S* m_step = proj && !a.training ? mem.take(BH) : nullptr;               // [B, H] inference: m of one step
    const int zeros_n = std::max(apart ? G : 0, tr.extra_rows * H);
    S* zeros = zeros_n ? mem.take(std::size_t(zeros_n)) : nullptr;           // stands in for absent b_hh, extra
    if (zeros) zero_row(zeros, zeros_n);
    const S* bR = a.bR ? a.bR : zeros;
    const S* extra = !dense ? a.R : a.extra ? a.extra : zeros;  // a diagonal recurrence's weights are the cell's extra
    // W^T [I, G] and R^T [H, NR] (R_last^T [H, H] apart for a mid-step product), gates of H columns
    const int NR = mid ? G - H : G;
    const auto WT = WeightOperand<S>::transposed(a.W, I, I, G, pack_input<S>(T, B, I, G), mem, H, true);
    std::optional<WeightOperand<S>> RT;
    if (dense) RT.emplace(WeightOperand<S>::transposed(a.R, P, P, NR, pack_recurrent<S>(T, B, P, NR), mem, H, true));
    std::optional<WeightOperand<S>> HrT;  // W_hr^T [H, P]
    if (proj) HrT.emplace(WeightOperand<S>::transposed(a.W_hr, H, H, P, pack_recurrent<S>(T, B, H, P), mem, 0, true));
    std::optional<WeightOperand<S>> RlastT;
    if (mid)
        RlastT.emplace(WeightOperand<S>::transposed(a.R + std::size_t(G - H) * H, H, H, H,
                                                    pack_recurrent<S>(T, B, H, H), mem, 0, true));

    const int init = initial_slot(T, a.reverse, a.training);
    for (int k = 0; k < NS; ++k) set_state(a.state[k] + init * B * SW[k], a.state0[k], B * SW[k]);
    if (a.hmask) mask_units(masked, a.state[0] + init * BP, a.hmask, B, P, UnitRange{0, P});

    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, G))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        const int un = u.u1 - u.u0;
        const UnitRange up = proj ? my_units(P, panel_width<S>()) : u;  // the units of h this thread owns
        WT.pack_units(u);
        if (RT) RT->pack_units(u);  // the panels of this thread's units, by this thread
        if (RlastT) RlastT->pack_units(u);
        if (HrT) HrT->pack_units(up);
        for (int s0 = 0; s0 < T; s0 += chunk) {
            const int n = std::min(chunk, T - s0);
            const int t_lo = a.reverse ? T - s0 - n : s0;  // the chunk covers times [t_lo, t_lo + n)
            S* pre = pre_base + (a.training ? t_lo * BL : 0);
            // pre[t] = x[t] W^T + b_ih (+ b_hh) for every t of the chunk: one product over n*B rows
            project_units<S>(pre, LD, a.x + std::size_t(t_lo) * B * I, WT, a.bW, apart ? nullptr : a.bR, n * B, I, G,
                             H, u);

            for (int k = 0; k < n; ++k) {
                const int s = s0 + k;
                const Step st = step_at(s, T, a.reverse, a.training);
                const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
                S* g = pre + (st.t - t_lo) * BL;                      // [B, saved*H]
                const S* h_rec = a.hmask ? masked + (s & 1) * BP : a.state[0] + st.prev * BP;
                S* m = proj ? (a.training ? a.m + std::size_t(st.t) * BH : m_step) : nullptr;  // [B, H]
                UnitsForward<S> uf{};
                uf.bias_hh = bR;
                uf.extra = extra;
                uf.opt = a.opt;
                uf.H = H;
                auto row = [&](int b) {  // point uf at batch row b
                    const std::size_t r = std::size_t(b) * H;
                    uf.gates = g + b * std::size_t(LD);
                    uf.rec = apart ? rec + b * std::size_t(G) : nullptr;
                    uf.h_rec = h_rec + std::size_t(b) * P;
                    for (int q = 0; q < NS; ++q) {
                        uf.prev[q] = a.state[q] + (st.prev * B + std::size_t(b)) * SW[q];
                        uf.next[q] = a.state[q] + (st.cur * B + std::size_t(b)) * SW[q];
                    }
                    uf.y = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                    if (proj) uf.next[0] = uf.y = m + r;  // the cell's h is m; the projection follows
                };
                if constexpr (!dense) {
                    // diagonal: the cell multiplies h_rec elementwise
                } else if constexpr (!apart) {
                    RT->multiply_units(g, LD, h_rec, P, rows, u.u0, u.u1, true);  // g += h_rec R^T
                } else {
                    RT->multiply_units(rec, G, h_rec, P, rows, u.u0, u.u1, false);  // rec = h_rec R^T
                    for (int b = 0; b < B; ++b) {
                        row(b);
                        if (!valid(a.lengths, b, st.t)) {  // saved terms of an ended row stay finite (zero)
                            for (int blk = G / H; blk < LD / H; ++blk) zero_row(uf.gates + blk * H + u.u0, un);
                            continue;
                        }
#pragma omp simd
                        for (int j = u.u0; j < u.u1; ++j) Cell::forward_gates(uf, j);
                    }
                    if constexpr (mid) {  // rec_last = q R_last^T, once every unit's q is known
                        step_end.arrive_and_wait();
                        RlastT->multiply_units(rec + (G - H), G, g + G, LD, rows, u.u0, u.u1, false);
                    }
                }
                for (int b = 0; b < B; ++b) {
                    row(b);
                    if (!valid(a.lengths, b, st.t)) {  // the state passes through, the output is 0
                        for (int q = proj ? 1 : 0; q < NS; ++q) copy_row(uf.next[q] + u.u0, uf.prev[q] + u.u0, un);
                        zero_row(uf.y + u.u0, un);  // (m, with a projection)
                        continue;
                    }
#pragma omp simd
                    for (int j = u.u0; j < u.u1; ++j) Cell::forward(uf, j);
                    if (zoneout) zoneout_forward(a, uf, st.t, b, u);
                }
                if (proj) {  // h = m W_hr^T for this thread's units of h, once every unit of m is known
                    step_end.arrive_and_wait();
                    S* h = a.state[0] + st.cur * BP;
                    const S* h_prev = a.state[0] + st.prev * BP;
                    HrT->multiply_units(h, P, m, H, rows, up.u0, up.u1, false);
                    for (int b = 0; b < B; ++b) {
                        S* y = a.y + (std::size_t(st.t) * B + b) * a.ldy + up.u0;
                        if (b < rows) {
                            copy_row(y, h + std::size_t(b) * P + up.u0, up.u1 - up.u0);
                        } else {  // ended: the state passes through, the output is 0
                            copy_row(h + std::size_t(b) * P + up.u0, h_prev + std::size_t(b) * P + up.u0, up.u1 - up.u0);
                            zero_row(y, up.u1 - up.u0);
                        }
                    }
                }
                if (a.hmask) mask_units(masked + ((s + 1) & 1) * BP, a.state[0] + st.cur * BP, a.hmask, B, P, up);
                step_end.arrive_and_wait();
            }
        }
    }
    const int fin = final_slot(T, a.reverse, a.training);
    for (int k = 0; k < NS; ++k)
        if (a.state_n[k]) copy_row(a.state_n[k], a.state[k] + fin * B * SW[k], B * SW[k]);
}

template <class Cell, class S>
void sequence_backward(const SeqBackward<S>& a) {
    constexpr CellTraits tr = Cell::traits;
    constexpr int NS = tr.states;
    constexpr bool apart = tr.recurrent_apart, mid = tr.mid_step_product;
    constexpr bool dense = tr.recurrence != Recurrence::Diagonal;  // block-diagonal arrives expanded
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const int G = gate_blocks<Cell>(*a.opt) * H, LD = saved_blocks<Cell>(*a.opt) * H;
    const std::size_t BH = std::size_t(B) * H, BL = std::size_t(B) * LD;
    const int TB = T * B;
    bool zoneout = false;
    for (int k = 0; k < NS; ++k) zoneout = zoneout || a.zoneout_mask[k];
    const bool proj = a.W_hr != nullptr;  // h is P wide, m = the cell's output [B, H] before the projection
    const int P = proj ? a.P : H;
    const std::size_t BP = std::size_t(B) * P;
    int SW[kMaxStates];
    for (int k = 0; k < kMaxStates; ++k) SW[k] = k == 0 ? P : H;
    Scratch<S> mem;
    S* dgates = mem.take(std::size_t(T) * BL);        // [T, B, saved*H] gradients w.r.t. pre-activations
    // carried gradients: dh, dh_next, d(h_rec) [B, P]; states 1.. (in place), d(mid) [B, H]
    S* carry = mem.take(3 * BP + NS * BH);
    S* dh = carry;
    S* dh_next = dh + BP;
    S* dh_rec = dh_next + BP;
    S* dmid = dh_rec + BP;
    S* dstate[kMaxStates] = {};
    for (int k = 1; k < NS; ++k) dstate[k] = dmid + k * BH;
    for (int k = 0; k < NS; ++k) set_state(k ? dstate[k] : dh, a.dstate_n[k], B * SW[k]);
    // projection: dh + dy of every step [T, B, P] (for dW_hr), dm [B, H], a row of zeros and a junk row [B, H]
    S* dht_all = proj ? mem.take(std::size_t(T) * BP) : nullptr;
    S* dm = proj ? mem.take(2 * BH + H) : nullptr;
    S* junk = proj ? dm + BH : nullptr;
    S* zero_dy = proj ? junk + BH : nullptr;
    if (proj) zero_row(zero_dy, H);
    const int zeros_n = tr.extra_rows * H;
    S* zeros = zeros_n ? mem.take(std::size_t(zeros_n)) : nullptr;
    if (zeros) zero_row(zeros, zeros_n);
    const S* extra = !dense ? a.R : a.extra ? a.extra : zeros;
    S* dextra = !dense ? a.dR : a.dextra;
    // zoneout: the part of each state gradient that passes to the previous state [NS, B, H], the cell's share
    // of dh + dy [B, H], and a zero dy row
    S* zpass = zoneout ? mem.take(std::size_t(NS + 1) * BH + H) : nullptr;
    if (zoneout) zero_row(zpass + NS * BH + BH, H);
    // R [NR, H] (rows of the gates whose product is not apart) and R_last [H, H]: panels copied once
    const int NR = apart ? G - H : G;
    std::optional<WeightOperand<S>> R;
    if (dense) R.emplace(WeightOperand<S>::direct(a.R, P, NR, P, mem, T > 1, true));
    std::optional<WeightOperand<S>> Hr;  // W_hr [P, H]
    if (proj) Hr.emplace(WeightOperand<S>::direct(a.W_hr, H, P, H, mem, T > 1, true));
    std::optional<WeightOperand<S>> Rlast;
    if (apart) Rlast.emplace(WeightOperand<S>::direct(a.R + std::size_t(G - H) * H, H, H, H, mem, T > 1, true));

    // Threads own hidden units of the state gradients: the pointwise pass of step t for those units needs only
    // their dh and carried state gradients; dh_prev[:, own] = dgates(all units) R[:, own] needs every unit's
    // dgates, so a step has one barrier between the two (two with a mid-step product).
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, G))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        const int un = u.u1 - u.u0;
        const UnitRange up = proj ? my_units(P, panel_width<S>()) : u;  // the units of h this thread owns
        if (R) R->pack_units(up);  // the panels of this thread's units, by this thread
        if (Rlast) Rlast->pack_units(u);
        if (Hr) Hr->pack_units(u);
        S *dh_t = dh, *dh_n = dh_next;  // each thread swaps its own copies, in step
        for (int s = T - 1; s >= 0; --s) {
            const Step st = step_at(s, T, a.reverse, true);
            const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
            const S* g = a.gates + st.t * BL;
            S* dg = dgates + st.t * BL;
            S* drec = a.hmask ? dh_rec : dh_n;  // gradient w.r.t. the recurrent input h_rec
            UnitsBackward<S> ub{};
            ub.extra = extra;
            ub.masked = a.hmask != nullptr;
            ub.opt = a.opt;
            ub.H = H;
            auto row = [&](int b) {  // point ub at batch row b
                const std::size_t r = std::size_t(b) * H;
                ub.gates = g + b * std::size_t(LD);
                ub.dgates = dg + b * std::size_t(LD);
                ub.dy = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
                ub.dh = dh_t + r;
                ub.dh_prev = dh_n + r;
                if (proj) {  // the cell's output is m: its gradient dm, and nothing it writes to h_prev is kept
                    ub.dy = zero_dy;
                    ub.dh = dm + r;
                    ub.dh_prev = junk + r;
                }
                for (int q = 0; q < NS; ++q) {
                    ub.prev[q] = a.state[q] + (st.prev * B + std::size_t(b)) * SW[q];
                    ub.next[q] = a.state[q] + (st.cur * B + std::size_t(b)) * SW[q];
                    ub.dstate[q] = q ? dstate[q] + r : nullptr;
                }
                ub.dmid = dmid + r;
                ub.drec = drec + r;
                ub.hmask = a.hmask ? a.hmask + std::size_t(b) * P : nullptr;
            };
            if (proj) {  // dht = dh + dy for this thread's units of h (0 for ended rows); then dm = dht W_hr
                S* dht = dht_all + std::size_t(st.t) * BP;
                for (int b = 0; b < B; ++b) {
                    S* d = dht + std::size_t(b) * P;
                    const S* dyb = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
                    const S* dhb = dh_t + std::size_t(b) * P;
                    for (int j = up.u0; j < up.u1; ++j) d[j] = b < rows ? dhb[j] + dyb[j] : S(0);
                }
                step_end.arrive_and_wait();
                Hr->multiply_units(dm, H, dht, P, rows, u.u0, u.u1, false);
            }
            for (int b = 0; b < B; ++b) {
                row(b);
                if (!valid(a.lengths, b, st.t)) {  // the state passed through unchanged: so do its gradients
                    for (int blk = 0; blk < LD / H; ++blk) zero_row(ub.dgates + blk * H + u.u0, un);
                    if (!proj) copy_row(ub.dh_prev + u.u0, ub.dh + u.u0, un);  // (with one: below, per unit of h)
                    continue;
                }
                if (zoneout) {  // the cell sees (1 - m) of each state gradient; m of it passes straight back
                    S* pass = zpass + std::size_t(b) * H;
                    S* own = zpass + NS * BH + std::size_t(b) * H;
                    const std::size_t at = (std::size_t(st.t) * B + b) * H;
                    for (int q = 0; q < NS; ++q) {
                        const S* m = a.zoneout_mask[q] ? a.zoneout_mask[q] + at : nullptr;
                        S* p = pass + q * BH;
                        for (int j = u.u0; j < u.u1; ++j) {
                            const S keep = m ? m[j] : S(0);
                            if (q == 0) {
                                const S total = ub.dh[j] + ub.dy[j];
                                p[j] = keep * total;
                                own[j] = (S(1) - keep) * total;
                            } else {
                                p[j] = keep * ub.dstate[q][j];
                                ub.dstate[q][j] -= p[j];
                            }
                        }
                    }
                    ub.dh = own;
                    ub.dy = zpass + NS * BH + BH;  // zeros
                }
#pragma omp simd
                for (int j = u.u0; j < u.u1; ++j) Cell::backward(ub, j);
                if (zoneout) {
                    const S* pass = zpass + std::size_t(b) * H;
                    for (int j = u.u0; j < u.u1; ++j) ub.dh_prev[j] += pass[j];
                    for (int q = 1; q < NS; ++q)
                        for (int j = u.u0; j < u.u1; ++j) ub.dstate[q][j] += pass[q * BH + j];
                }
            }
            step_end.arrive_and_wait();
            // Gradients w.r.t. h_rec go straight into dh_prev, or with a dropout mask into dh_rec first and then
            // dh_prev += dh_rec * hmask.
            if constexpr (!dense) {
                // diagonal: the cell wrote dh_prev whole
            } else if constexpr (apart) {
                if constexpr (!mid) {
                    Rlast->multiply_units(drec, H, dg + G, LD, rows, u.u0, u.u1, a.hmask == nullptr);  // dq R_last
                } else {
                    Rlast->multiply_units(dmid, H, dg + G, LD, rows, u.u0, u.u1, false);  // d(mid) = dq R_last
                    for (int b = 0; b < B; ++b) {
                        row(b);
                        if (!valid(a.lengths, b, st.t)) {
                            if (a.hmask) zero_row(ub.drec + u.u0, un);
                            continue;
                        }
#pragma omp simd
                        for (int j = u.u0; j < u.u1; ++j) Cell::backward_mid(ub, j);
                    }
                    step_end.arrive_and_wait();
                }
                R->multiply_units(drec, H, dg, LD, rows, u.u0, u.u1, true);  // += dgates[:, :G-H] R[:G-H]
            } else {
                // (+)= dgates R; with a projection dh_prev is only this product (the cell's own part is 0)
                R->multiply_units(drec, P, dg, LD, rows, up.u0, up.u1, a.hmask == nullptr && !proj);
            }
            if (proj) {
                for (int b = 0; b < B; ++b) {  // ended rows: the gradient passes through; masked: dh_rec * hmask
                    S* d = dh_n + std::size_t(b) * P;
                    if (b >= rows) {
                        copy_row(d + up.u0, dh_t + std::size_t(b) * P + up.u0, up.u1 - up.u0);
                    } else if (a.hmask) {
                        const S* dr = dh_rec + std::size_t(b) * P;
                        const S* mk = a.hmask + std::size_t(b) * P;
                        for (int j = up.u0; j < up.u1; ++j) d[j] = dr[j] * mk[j];
                    }
                }
            } else if (dense && a.hmask) {
                add_masked_units(dh_n, dh_rec, a.hmask, rows, H, u);
            }
            std::swap(dh_t, dh_n);
        }
    }
    if (T % 2) std::swap(dh, dh_next);  // where the threads' last swap left the gradient w.r.t. h0
    for (int k = 0; k < NS; ++k)
        if (a.dstate0[k]) copy_row(a.dstate0[k], k ? dstate[k] : dh, B * SW[k]);

    // Weight gradients: large products over all T*B rows at once.
    std::vector<S> masked_all;
    const S* h_prev_all = recurrent_inputs(masked_all, a.state[0] + (a.reverse ? BP : 0), a.hmask, T, BP);  // [T, B, P]
    WeightOperand<S>::direct(a.W, I, G, I, mem, true).multiply(a.dx, I, dgates, LD, TB, a.dx_accumulate);  // dx (+)= dG W
    add_transposed_product(a.dW, I, dgates, LD, G, a.x, I, TB, I);        // dW += dG^T x
    if (dense) add_transposed_product(a.dR, P, dgates, LD, NR, h_prev_all, P, TB, P);  // dR += dG^T h_rec
    if (proj && a.dW_hr) add_transposed_product(a.dW_hr, H, dht_all, P, P, a.m, H, TB, H);  // dW_hr += dht^T m
    if (apart) {  // the last gate's recurrent weights multiply h_rec, or the mid-step vector (saved as q)
        const S* q_in = mid ? a.gates + G : h_prev_all;
        add_transposed_product(a.dR + std::size_t(NR) * H, H, dgates + G, LD, H, q_in, mid ? LD : H, TB, H);
    }
    if (a.dbW) add_column_sums(a.dbW, dgates, TB, G, LD);
    if (a.dbR) {
        add_column_sums(a.dbR, dgates, TB, NR, LD);
        if (apart) add_column_sums(a.dbR + NR, dgates + G, TB, H, LD);
    }
    if constexpr (tr.extra_rows > 0 || !dense) {
        if (dextra) {
            UnitsBackward<S> ub{};
            ub.dextra = dextra;
            ub.extra = extra;
            ub.opt = a.opt;
            ub.H = H;
            for (int t = 0; t < T; ++t) {
                const std::size_t prev = std::size_t(t + (a.reverse ? 1 : 0)) * B;
                const std::size_t cur = std::size_t(t + (a.reverse ? 0 : 1)) * B;
                for (int b = 0; b < B; ++b) {
                    ub.gates = a.gates + t * BL + b * std::size_t(LD);
                    ub.dgates = dgates + t * BL + b * std::size_t(LD);
                    ub.hmask = a.hmask ? a.hmask + b * std::size_t(P) : nullptr;
                    for (int q = 0; q < NS; ++q) {
                        ub.prev[q] = a.state[q] + (prev + b) * SW[q];
                        ub.next[q] = a.state[q] + (cur + b) * SW[q];
                    }
#pragma omp simd
                    for (int j = 0; j < H; ++j) Cell::extra_grad(ub, j);
                }
            }
        }
    }
}

}  // namespace cpu
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
