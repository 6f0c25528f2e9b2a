// LSTM with forget gate (Gers et al. 1999) and optional peepholes (Gers & Schmidhuber 2000).
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
void lstm_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 4 * H;
    const std::size_t BH = std::size_t(B) * H, BG = std::size_t(B) * G;
    const int chunk = a.training ? T : std::min(T, kInferenceChunk);
    Scratch<S> mem;
    S* scratch = a.training ? nullptr : mem.take(std::size_t(chunk) * BG);     // inference: [chunk, B, G]
    std::vector<S> no_peephole(a.P ? 0 : std::size_t(3) * H, S(0));
    const S* P = a.P ? a.P : no_peephole.data();
    const S *Pi = P, *Pf = P + H, *Po = P + 2 * H;                         // [H] each
    S* pre_base = a.training ? a.gates : scratch;
    S* masked = a.hmask ? mem.take(2 * BH) : nullptr;                          // [2, B, H] h * hmask, ping-pong
    // W^T [I, G] and R^T [H, G], gates of H columns
    const auto WT = WeightOperand<S>::transposed(a.W, I, I, G, pack_input<S>(T, B, I, G), mem, H, true);
    const auto RT = WeightOperand<S>::transposed(a.R, H, H, G, pack_recurrent<S>(T, B, H, G), mem, H, true);

    const int init = initial_slot(T, a.reverse, a.training);
    set_state(a.h + init * BH, a.h0, int(BH));
    set_state(a.c + init * BH, a.c0, int(BH));
    if (a.hmask) mask_units(masked, a.h + init * BH, a.hmask, B, H, UnitRange{0, H});

    // Each thread owns hidden units [u0, u1): it projects the inputs of those units' gate columns, multiplies
    // h_prev (all units) by their columns of R^T and runs their pointwise pass. Only h crosses threads, so a
    // step ends with the one barrier that publishes h.
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, G))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        WT.pack_units(u);
        RT.pack_units(u);  // the panels of this thread's units, by this thread
        for (int s0 = 0; s0 < T; s0 += chunk) {
            const int n = std::min(chunk, T - s0);
            const int t_lo = a.reverse ? T - s0 - n : s0;  // the chunk covers times [t_lo, t_lo + n)
            S* pre = pre_base + (a.training ? t_lo * BG : 0);
            // pre[t] = x[t] W^T + b_ih + b_hh for every t of the chunk: one product over n*B rows
            project_units(pre, G, a.x + std::size_t(t_lo) * B * I, WT, a.bW, a.bR, n * B, I, G, H, u);

            for (int k = 0; k < n; ++k) {
                const int s = s0 + k;
                const Step st = step_at(s, T, a.reverse, a.training);
                const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
                S* g = pre + (st.t - t_lo) * BG;                                // [B, G]
                const S* h_prev = a.h + st.prev * BH;
                const S* c_prev = a.c + st.prev * BH;
                S* h_cur = a.h + st.cur * BH;
                S* c_cur = a.c + st.cur * BH;
                const S* h_rec = a.hmask ? masked + (s & 1) * BH : h_prev;
                RT.multiply_units(g, G, h_rec, H, rows, u.u0, u.u1, true);         // g += h_rec R^T

                // i = σ(g_i + p_i c_prev)   f = σ(g_f + p_f c_prev)   z = tanh(g_g)
                // c = f c_prev + i z        o = σ(g_o + p_o c)        h = o tanh(c)
                for (int b = 0; b < B; ++b) {
                    S* gb = g + b * std::size_t(G);
                    const S* hp = h_prev + b * std::size_t(H);
                    const S* cp = c_prev + b * std::size_t(H);
                    S* hc = h_cur + b * std::size_t(H);
                    S* cc = c_cur + b * std::size_t(H);
                    S* yb = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                    if (!valid(a.lengths, b, st.t)) {
                        copy_row(hc + u.u0, hp + u.u0, u.u1 - u.u0);
                        copy_row(cc + u.u0, cp + u.u0, u.u1 - u.u0);
                        zero_row(yb + u.u0, u.u1 - u.u0);
                        continue;
                    }
#pragma omp simd
                    for (int j = u.u0; j < u.u1; ++j) {
                        const S i = sigmoid(gb[j] + Pi[j] * cp[j]);
                        const S f = sigmoid(gb[H + j] + Pf[j] * cp[j]);
                        const S z = tanh_(gb[2 * H + j]);
                        const S c = f * cp[j] + i * z;
                        const S o = sigmoid(gb[3 * H + j] + Po[j] * c);
                        const S h = o * tanh_(c);
                        gb[j] = i;
                        gb[H + j] = f;
                        gb[2 * H + j] = z;
                        gb[3 * H + j] = o;
                        cc[j] = c;
                        hc[j] = h;
                        yb[j] = h;
                    }
                }
                if (a.hmask) mask_units(masked + ((s + 1) & 1) * BH, h_cur, a.hmask, B, H, u);
                step_end.arrive_and_wait();
            }
        }
    }
    const int fin = final_slot(T, a.reverse, a.training);
    if (a.h_n) copy_row(a.h_n, a.h + fin * BH, int(BH));
    if (a.c_n) copy_row(a.c_n, a.c + fin * BH, int(BH));
}

template <class S>
void lstm_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 4 * H;
    const std::size_t BH = std::size_t(B) * H, BG = std::size_t(B) * G;
    const int TB = T * B;
    Scratch<S> mem;
    S* dgates = mem.take(std::size_t(T) * BG);        // [T, B, G] gradients w.r.t. pre-activations
    S* carry = mem.take(4 * BH);                      // dh, dh_next, dc, d(h_rec): [B, H] each
    S* dh = carry;
    S* dh_next = dh + BH;
    S* dc = dh_next + BH;
    S* dh_rec = dc + BH;
    set_state(dh, a.dh_n, int(BH));
    set_state(dc, a.dc_n, int(BH));
    std::vector<S> no_peephole(a.P ? 0 : std::size_t(3) * H, S(0));
    const S* P = a.P ? a.P : no_peephole.data();
    const S *Pi = P, *Pf = P + H, *Po = P + 2 * H;
    const auto R = WeightOperand<S>::direct(a.R, H, G, H, mem, T > 1, true);  // R [G, H], panels copied once

    // Threads own hidden units [u0, u1) of the state gradients: the pointwise pass of step t for those units
    // needs only their dh, dc; dh_prev[:, own] = dgates(all units) R[:, own] needs every unit's dgates, so a
    // step has one barrier, between the two.
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, G))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        R.pack_units(u);  // the panels of this thread's units, by this thread
        S *dh_t = dh, *dh_n = dh_next;  // each thread swaps its own copies, in step
        for (int s = T - 1; s >= 0; --s) {
            const Step st = step_at(s, T, a.reverse, true);
            const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
            const S* g = a.gates + st.t * BG;
            const S* c_prev = a.c + st.prev * BH;
            const S* c_cur = a.c + st.cur * BH;
            S* dg = dgates + st.t * BG;

            // dh_t = dh + dy_t;  do = dh_t tanh(c);  dc_t = dc + dh_t o (1 - tanh²c) + do' p_o
            // di' = dc_t z i(1-i);  df' = dc_t c_prev f(1-f);  dz' = dc_t i (1-z²);  do' = do o(1-o)
            // dc_prev = dc_t f + di' p_i + df' p_f;  dh_prev = dgates R (after the barrier)
            for (int b = 0; b < B; ++b) {
                const S* gb = g + b * std::size_t(G);
                const S* cp = c_prev + b * std::size_t(H);
                const S* cc = c_cur + b * std::size_t(H);
                const S* dyb = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
                S* dgb = dg + b * std::size_t(G);
                S* dhb = dh_t + b * std::size_t(H);
                S* dhn = dh_n + b * std::size_t(H);
                S* dcb = dc + b * std::size_t(H);
                if (!valid(a.lengths, b, st.t)) {  // state passed through unchanged: so do its gradients
                    for (int gate = 0; gate < 4; ++gate) zero_row(dgb + gate * H + u.u0, u.u1 - u.u0);
                    copy_row(dhn + u.u0, dhb + u.u0, u.u1 - u.u0);
                    continue;
                }
#pragma omp simd
                for (int j = u.u0; j < u.u1; ++j) {
                    const S i = gb[j], f = gb[H + j], z = gb[2 * H + j], o = gb[3 * H + j];
                    const S tc = tanh_(cc[j]);
                    const S dht = dhb[j] + dyb[j];
                    const S dop = dht * tc * o * (S(1) - o);
                    const S dct = dcb[j] + dht * o * (S(1) - tc * tc) + dop * Po[j];
                    const S dip = dct * z * i * (S(1) - i);
                    const S dfp = dct * cp[j] * f * (S(1) - f);
                    const S dzp = dct * i * (S(1) - z * z);
                    dcb[j] = dct * f + dip * Pi[j] + dfp * Pf[j];
                    dgb[j] = dip;
                    dgb[H + j] = dfp;
                    dgb[2 * H + j] = dzp;
                    dgb[3 * H + j] = dop;
                    dhn[j] = S(0);
                }
            }
            step_end.arrive_and_wait();
            if (a.hmask) {  // dh_prev += (dgates R) * hmask
                R.multiply_units(dh_rec, H, dg, G, rows, u.u0, u.u1, false);
                add_masked_units(dh_n, dh_rec, a.hmask, rows, H, u);
            } else {        // dh_prev += dgates R
                R.multiply_units(dh_n, H, dg, G, rows, u.u0, u.u1, true);
            }
            std::swap(dh_t, dh_n);
        }
    }
    if (T % 2) std::swap(dh, dh_next);  // where the threads' last swap left the gradient w.r.t. h0
    if (a.dh0) copy_row(a.dh0, dh, int(BH));
    if (a.dc0) copy_row(a.dc0, dc, int(BH));

    // Weight gradients: large GEMMs over all T*B rows at once.
    std::vector<S> masked_all;
    const S* h_prev_all = recurrent_inputs(masked_all, a.h + (a.reverse ? BH : 0), a.hmask, T, BH);  // [T, B, H]
    // dx (+)= dG W
    WeightOperand<S>::direct(a.W, I, G, I, mem, true).multiply(a.dx, I, dgates, G, TB, a.dx_accumulate);
    add_transposed_product(a.dW, I, dgates, G, G, a.x, I, TB, I);        // dW += dG^T x
    add_transposed_product(a.dR, H, dgates, G, G, h_prev_all, H, TB, H);  // dR += dG^T h_rec
    if (a.dbW) add_column_sums(a.dbW, dgates, TB, G, G);
    if (a.dbR) add_column_sums(a.dbR, dgates, TB, G, G);
    if (a.dP) {
        // dp_i += Σ di' c_prev;  dp_f += Σ df' c_prev;  dp_o += Σ do' c
        for (int t = 0; t < T; ++t) {
            const S* cp_t = a.c + (t + (a.reverse ? 1 : 0)) * BH;
            const S* cc_t = a.c + (t + (a.reverse ? 0 : 1)) * BH;
            for (int b = 0; b < B; ++b) {
                const S* dgb = dgates + t * BG + b * std::size_t(G);
                const S* cp = cp_t + b * std::size_t(H);
                const S* cc = cc_t + b * std::size_t(H);
#pragma omp simd
                for (int j = 0; j < H; ++j) {
                    a.dP[j] += dgb[j] * cp[j];
                    a.dP[H + j] += dgb[H + j] * cp[j];
                    a.dP[2 * H + j] += dgb[3 * H + j] * cc[j];
                }
            }
        }
    }
}

template void lstm_forward<float>(const SeqForward<float>&);
template void lstm_forward<double>(const SeqForward<double>&);
template void lstm_backward<float>(const SeqBackward<float>&);
template void lstm_backward<double>(const SeqBackward<double>&);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
