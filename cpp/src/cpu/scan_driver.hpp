// The CPU sequence driver for cells without a recurrent matrix whose step is a linear recurrence
// h = a h_prev + b (cells/min_rnn.hpp: minGRU, minLSTM). The coefficients of every step are known once the
// input projection is, so training runs the recurrence as a parallel scan over time:
//   forward:   pre = x W^T + b (one product over all T*B rows)
//              T splits into blocks of time steps (how many depends on the sizes, not the threads), threads
//              take whole blocks: (1) run each block from h = 0, keeping the block's end value e and the
//              product P of its a's;  (2) one thread chains the blocks: start(k+1) = P(k) start(k) + e(k);
//              (3) run each block again from its true start, writing h and y
//   backward:  the same three passes backwards in time on d(s) = a(s) (dy(s) + d(s+1)), the gradient that
//              step s passes to h_prev, then dpre from (da, db) = (e h_prev, e), and dx, dW, db as products
// Work is twice a sequential pass, depth 2T/threads (plus the chain over blocks). Keeping each step's
// coefficients in pass 1 so that pass 3 is one multiply-add measured slower (T=2048, B=8, H=128: 48 ms against
// 25 ms for a training step): the pass is memory-bound, and the vectorised activations cost less than writing
// and reading back two more [T, B, H] arrays. Inference and short sequences
// run the plain step-by-step loop, which the scan is tested against. Steps past a row's length
// have a = 1, b = 0 (the state passes through) and output 0.
// Shape legend and gradient rule: see rnnkit/config.hpp; time/slot layout: see sequence.hpp.
#pragma once

#include <algorithm>
#include <vector>

#include "cells/min_rnn.hpp"
#include "cpu/gemm.hpp"
#include "cpu/pointwise.hpp"
#include "cpu/team.hpp"
#include "cpu/workspace.hpp"
#include "rnnkit/config.hpp"
#include "sequence.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace cpu {

// Blocks of time for a training scan over T steps of B*H units: worth it when blocks are long enough (16 steps)
// and a step has work (the chain is B*H per block). A function of the sizes only, never of the thread count:
// the blocks' boundaries decide the rounding, so training gives the same bits on 1, 2 or 3 threads (threads
// take whole blocks; one thread runs them all, at the cost of the scan's second pass).
inline int scan_blocks(int T, int B, int H) {
    if (T < 32 || long(T) * B * H < 4096) return 1;
    return std::min(8, T / 16);
}

// Block k of n over T steps: [s0, s1).
inline UnitRange scan_block_range(int T, int n, int k) {
    return UnitRange{int(long(T) * k / n), int(long(T) * (k + 1) / n)};
}

// One block of steps [s0, s1) in processing order from the state h [B, H] (updated in place). With `write`,
// h after each step goes to its training slot (if slots) and to y; otherwise only the product of the a's of
// valid steps is kept in P [B, H] (if P).
template <class Cell, class S>
void scan_block(const SeqForward<S>& a, const S* pre, int LD, int s0, int s1, S* h, S* P, bool write) {
    const int T = a.T, B = a.B, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    if (P)
        for (std::size_t k = 0; k < BH; ++k) P[k] = S(1);
    for (int s = s0; s < s1; ++s) {
        const Step st = step_at(s, T, a.reverse, true);
        for (int b = 0; b < B; ++b) {
            S* hb = h + std::size_t(b) * H;
            S* y = a.y + (std::size_t(st.t) * B + b) * a.ldy;
            if (!valid(a.lengths, b, st.t)) {
                if (write) zero_row(y, H);
            } else {
                const S* p = pre + (std::size_t(st.t) * B + b) * LD;
                S* Pb = P ? P + std::size_t(b) * H : nullptr;
#pragma omp simd
                for (int j = 0; j < H; ++j) {
                    S ca, cb;
                    Cell::coeffs(p, H, j, ca, cb);
                    hb[j] = ca * hb[j] + cb;
                    if (Pb) Pb[j] *= ca;
                }
                if (write) copy_row(y, hb, H);
            }
            if (write && a.training) copy_row(a.state[0] + (std::size_t(st.cur) * B + b) * H, hb, H);
        }
    }
}

template <class Cell, class S>
void scan_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const int G = Cell::traits.gates * H, LD = Cell::traits.saved * H;
    const std::size_t BH = std::size_t(B) * H;
    Scratch<S> mem;
    S* pre = a.training ? a.gates : mem.take(std::size_t(T) * B * LD);
    project_all(pre, LD, a.x, a.W, a.bW, a.bR, T * B, I, G);
    S* h = mem.take(BH);
    set_state(h, a.state0[0], int(BH));
    if (a.training) set_state(a.state[0] + std::size_t(initial_slot(T, a.reverse, true)) * BH, a.state0[0], int(BH));
    const int n = a.training ? scan_blocks(T, B, H) : 1;
    if (n == 1) {
        scan_block<Cell, S>(a, pre, LD, 0, T, h, nullptr, true);
    } else {
        // per block k: its start state, its end value from 0 (e), the product of its a's (P)
        S* start = mem.take(std::size_t(n) * BH);
        S* e = mem.take(std::size_t(n) * BH);
        S* P = mem.take(std::size_t(n) * BH);
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (int k = 0; k < n; ++k) {
                const UnitRange blk = scan_block_range(T, n, k);
                zero_row(e + k * BH, int(BH));
                scan_block<Cell, S>(a, pre, LD, blk.u0, blk.u1, e + k * BH, P + k * BH, false);
            }
#pragma omp single
            {
                copy_row(start, h, int(BH));
                for (int c = 0; c + 1 < n; ++c)
                    for (std::size_t i = 0; i < BH; ++i)
                        start[(c + 1) * BH + i] = P[c * BH + i] * start[c * BH + i] + e[c * BH + i];
            }
#pragma omp for schedule(static)
            for (int k = 0; k < n; ++k) {  // start(k) becomes its end
                const UnitRange blk = scan_block_range(T, n, k);
                scan_block<Cell, S>(a, pre, LD, blk.u0, blk.u1, start + k * BH, nullptr, true);
            }
        }
        copy_row(h, start + (n - 1) * BH, int(BH));
    }
    if (a.state_n[0]) copy_row(a.state_n[0], h, int(BH));
}

// Backward through one block [s0, s1) (processing order), from d = the gradient the step after s1 - 1 passes
// to its h_prev (in place: on return, what step s0 passes on). With `grads`, writes dpre of each valid step;
// otherwise keeps the product of the block's a's in P.
template <class Cell, class S>
void scan_block_backward(const SeqBackward<S>& a, const S* pre, S* dpre, int LD, int s0, int s1, S* d, S* P,
                         bool grads) {
    const int T = a.T, B = a.B, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    if (P)
        for (std::size_t k = 0; k < BH; ++k) P[k] = S(1);
    for (int s = s1 - 1; s >= s0; --s) {
        const Step st = step_at(s, T, a.reverse, true);
        for (int b = 0; b < B; ++b) {
            const std::size_t tb = std::size_t(st.t) * B + b;
            if (!valid(a.lengths, b, st.t)) {  // a = 1: d passes unchanged
                if (grads) zero_row(dpre + tb * LD, Cell::traits.gates * H);
                continue;
            }
            S* db_ = d + std::size_t(b) * H;
            const S* p = pre + tb * LD;
            const S* dy = a.dy + tb * a.ldy;
            const S* hp = a.state[0] + (std::size_t(st.prev) * B + b) * H;
            S* Pb = P ? P + std::size_t(b) * H : nullptr;
            S* dp = grads ? dpre + tb * LD : nullptr;
#pragma omp simd
            for (int j = 0; j < H; ++j) {
                S ca, cb;
                Cell::coeffs(p, H, j, ca, cb);
                const S e = dy[j] + db_[j];  // d loss / d h(s)
                if (dp) Cell::coeffs_grad(p, dp, H, j, e * hp[j], e);
                db_[j] = ca * e;
                if (Pb) Pb[j] *= ca;
            }
        }
    }
}

template <class Cell, class S>
void scan_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, H = a.H, TB = T * B;
    const int G = Cell::traits.gates * H, LD = Cell::traits.saved * H;
    const std::size_t BH = std::size_t(B) * H;
    Scratch<S> mem;
    S* dpre = mem.take(std::size_t(TB) * LD);
    S* d = mem.take(BH);
    set_state(d, a.dstate_n[0], int(BH));
    // (the forward's chain: with zero dy the gradient from dstate_n passes through every block)
    const int n = scan_blocks(T, B, H);
    if (n == 1) {
        scan_block_backward<Cell, S>(a, a.gates, dpre, LD, 0, T, d, nullptr, true);
    } else {
        S* start = mem.take(std::size_t(n) * BH);  // what flows into block k from the block after it
        S* e = mem.take(std::size_t(n) * BH);
        S* P = mem.take(std::size_t(n) * BH);
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (int k = 0; k < n; ++k) {
                const UnitRange blk = scan_block_range(T, n, k);
                zero_row(e + k * BH, int(BH));
                scan_block_backward<Cell, S>(a, a.gates, dpre, LD, blk.u0, blk.u1, e + k * BH, P + k * BH, false);
            }
#pragma omp single
            {
                copy_row(start + (n - 1) * BH, d, int(BH));
                for (int c = n - 1; c > 0; --c)
                    for (std::size_t i = 0; i < BH; ++i)
                        start[(c - 1) * BH + i] = P[c * BH + i] * start[c * BH + i] + e[c * BH + i];
            }
#pragma omp for schedule(static)
            for (int k = 0; k < n; ++k) {  // start(k) becomes what block k passes to the block before it
                const UnitRange blk = scan_block_range(T, n, k);
                scan_block_backward<Cell, S>(a, a.gates, dpre, LD, blk.u0, blk.u1, start + k * BH, nullptr, true);
            }
        }
        copy_row(d, start, int(BH));
    }
    if (a.dstate0[0]) copy_row(a.dstate0[0], d, int(BH));
    input_weight_grads(a, dpre, G, G);
}

}  // namespace cpu
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
