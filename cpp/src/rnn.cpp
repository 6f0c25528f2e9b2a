// Simple (Elman) RNN: h = act(W x + b_ih + R h_prev + b_hh), act = tanh or relu.
// Shape legend and gradient rule: see rnnkit/config.hpp; time/slot layout: see kernels.hpp.
#include <algorithm>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "weights.hpp"
#include "pointwise.hpp"
#include "team.hpp"
#include "workspace.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
void rnn_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    const int chunk = a.training ? T : std::min(T, kInferenceChunk);
    Scratch<S> mem;
    S* scratch = a.training ? nullptr : mem.take(std::size_t(chunk) * BH);
    S* pre_base = a.training ? a.gates : scratch;
    S* masked = a.hmask ? mem.take(2 * BH) : nullptr;                          // [2, B, H] h * hmask, ping-pong
    // W^T [I, H] and R^T [H, H]
    const auto WT = WeightOperand<S>::transposed(a.W, I, I, H, pack_input<S>(T, B, I, H), mem, 0, true);
    const auto RT = WeightOperand<S>::transposed(a.R, H, H, H, pack_recurrent<S>(T, B, H, H), mem, 0, true);
    const int init = initial_slot(T, a.reverse, a.training);
    set_state(a.h + init * BH, a.h0, int(BH));
    if (a.hmask) mask_units(masked, a.h + init * BH, a.hmask, B, H, UnitRange{0, H});

    // Threads own hidden units, one barrier per step (see lstm_forward).
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, H))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        WT.pack_units(u);
        RT.pack_units(u);  // the panels of this thread's units, by this thread
        const int un = u.u1 - u.u0;
        for (int s0 = 0; s0 < T; s0 += chunk) {
            const int n = std::min(chunk, T - s0);
            const int t_lo = a.reverse ? T - s0 - n : s0;
            S* pre = pre_base + (a.training ? t_lo * BH : 0);
            project_units(pre, H, a.x + std::size_t(t_lo) * B * I, WT, a.bW, a.bR, n * B, I, H, H, u);

            for (int k = 0; k < n; ++k) {
                const int s = s0 + k;
                const Step st = step_at(s, T, a.reverse, a.training);
                const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
                S* g = pre + (st.t - t_lo) * BH;
                const S* h_prev = a.h + st.prev * BH;
                S* h_cur = a.h + st.cur * BH;
                const S* h_rec = a.hmask ? masked + (s & 1) * BH : h_prev;
                RT.multiply_units(g, H, h_rec, H, rows, u.u0, u.u1, true);  // g += h_rec R^T

                // h = tanh(g) or max(g, 0)
                for (int b = 0; b < B; ++b) {
                    S* gb = g + b * std::size_t(H);
                    const S* hp = h_prev + b * std::size_t(H);
                    S* hc = h_cur + b * std::size_t(H);
                    S* yb = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                    if (!valid(a.lengths, b, st.t)) {
                        copy_row(hc + u.u0, hp + u.u0, un);
                        zero_row(yb + u.u0, un);
                        continue;
                    }
#pragma omp simd
                    for (int j = u.u0; j < u.u1; ++j) {
                        const S h = a.relu ? std::max(gb[j], S(0)) : tanh_(gb[j]);
                        gb[j] = h;
                        hc[j] = h;
                        yb[j] = h;
                    }
                }
                if (a.hmask) mask_units(masked + ((s + 1) & 1) * BH, h_cur, a.hmask, B, H, u);
                step_end.arrive_and_wait();
            }
        }
    }
    if (a.h_n) copy_row(a.h_n, a.h + final_slot(T, a.reverse, a.training) * BH, int(BH));
}

template <class S>
void rnn_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    const int TB = T * B;
    Scratch<S> mem;
    S* dgates = mem.take(std::size_t(T) * BH);  // [T, B, H] gradients w.r.t. pre-activations
    S* carry = mem.take(3 * BH);  // dh, dh_next, d(h_rec)
    S* dh = carry;
    S* dh_next = dh + BH;
    S* dh_rec = dh_next + BH;
    set_state(dh, a.dh_n, int(BH));
    const auto R = WeightOperand<S>::direct(a.R, H, H, H, mem, T > 1, true);  // R [H, H], panels copied once

    // Threads own hidden units, one barrier per step (see lstm_backward).
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, H))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        R.pack_units(u);  // the panels of this thread's units, by this thread
        const int un = u.u1 - u.u0;
        S *dh_t = dh, *dh_n = dh_next;  // each thread swaps its own copies, in step
        for (int s = T - 1; s >= 0; --s) {
            const Step st = step_at(s, T, a.reverse, true);
            const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
            const S* g = a.gates + st.t * BH;
            S* dg = dgates + st.t * BH;
            // dg = (dh + dy_t) act'(h): tanh' = 1 - h², relu' = [h > 0];  dh_prev = dg R
            for (int b = 0; b < B; ++b) {
                const S* gb = g + b * std::size_t(H);
                const S* dyb = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
                S* dgb = dg + b * std::size_t(H);
                S* dhb = dh_t + b * std::size_t(H);
                S* dhn = dh_n + b * std::size_t(H);
                if (!valid(a.lengths, b, st.t)) {
                    zero_row(dgb + u.u0, un);
                    copy_row(dhn + u.u0, dhb + u.u0, un);
                    continue;
                }
#pragma omp simd
                for (int j = u.u0; j < u.u1; ++j) {
                    const S h = gb[j];
                    const S d = a.relu ? (h > S(0) ? S(1) : S(0)) : S(1) - h * h;
                    dgb[j] = (dhb[j] + dyb[j]) * d;
                    dhn[j] = S(0);
                }
            }
            step_end.arrive_and_wait();
            if (a.hmask) {
                R.multiply_units(dh_rec, H, dg, H, rows, u.u0, u.u1, false);
                add_masked_units(dh_n, dh_rec, a.hmask, rows, H, u);
            } else {
                R.multiply_units(dh_n, H, dg, H, rows, u.u0, u.u1, true);
            }
            std::swap(dh_t, dh_n);
        }
    }
    if (T % 2) std::swap(dh, dh_next);  // where the threads' last swap left the gradient w.r.t. h0
    if (a.dh0) copy_row(a.dh0, dh, int(BH));

    std::vector<S> masked_all;
    const S* h_prev_all = recurrent_inputs(masked_all, a.h + (a.reverse ? BH : 0), a.hmask, T, BH);
    const S* dG = dgates;
    WeightOperand<S>::direct(a.W, I, H, I, mem, true).multiply(a.dx, I, dG, H, TB, a.dx_accumulate);  // dx (+)= dG W
    add_transposed_product(a.dW, I, dG, H, H, a.x, I, TB, I);
    add_transposed_product(a.dR, H, dG, H, H, h_prev_all, H, TB, H);
    if (a.dbW) add_column_sums(a.dbW, dG, TB, H, H);
    if (a.dbR) add_column_sums(a.dbR, dG, TB, H, H);
}

template void rnn_forward<float>(const SeqForward<float>&);
template void rnn_forward<double>(const SeqForward<double>&);
template void rnn_backward<float>(const SeqBackward<float>&);
template void rnn_backward<double>(const SeqBackward<double>&);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
