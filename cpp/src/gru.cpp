// GRU (Cho et al. 2014) in both conventions:
//   linear_before_reset = true  (PyTorch / cuDNN):  n = tanh(W_n x + b_in + r * (R_n h + b_hn))
//   linear_before_reset = false (Cho et al. 2014):  n = tanh(W_n x + b_in + R_n (r * h) + b_hn)
// with r = σ(W_r x + b_ir + R_r h + b_hr), z = σ(W_z x + b_iz + R_z h + b_hz), h' = (1 - z) n + z h.
// Shape legend and gradient rule: see rnnkit/config.hpp; time/slot layout: see kernels.hpp.
//
// Saved gates per (t, b): [r, z, n, q], q = R_n h + b_hn (linear_before_reset) or q = r * h (not).
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
void gru_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 3 * H, LD = gru_gate_stride(H);
    const std::size_t BH = std::size_t(B) * H, BL = std::size_t(B) * LD;
    const int chunk = a.training ? T : std::min(T, kInferenceChunk);
    Scratch<S> mem;
    S* scratch = a.training ? nullptr : mem.take(std::size_t(chunk) * BL);   // inference: [chunk, B, 4H]
    S* hidden = mem.take(std::size_t(B) * G);                              // [B, 3H] recurrent terms of one step
    std::vector<S> no_bias(a.bR ? 0 : std::size_t(G), S(0));
    const S* bR = a.bR ? a.bR : no_bias.data();
    const S* R_n = a.R + std::size_t(2) * H * H;                        // [H, H]
    S* pre_base = a.training ? a.gates : scratch;
    S* masked = a.hmask ? mem.take(2 * BH) : nullptr;                        // [2, B, H] h * hmask, ping-pong
    const bool lbr = a.linear_before_reset;
    // Packed once: R^T for every gate (linear_before_reset), or R_rz^T and R_n^T apart.
    const auto WT = WeightOperand<S>::transposed(a.W, I, I, G, pack_input<S>(T, B, I, G), mem, H, true);
    const int NR = lbr ? G : 2 * H;  // columns of R^T multiplied together in a step
    const auto RT = WeightOperand<S>::transposed(a.R, H, H, NR, pack_recurrent<S>(T, B, H, NR), mem, H, true);
    const auto RnT = WeightOperand<S>::transposed(R_n, H, H, H, !lbr && pack_recurrent<S>(T, B, H, H), mem, 0, true);

    const int init = initial_slot(T, a.reverse, a.training);
    set_state(a.h + init * BH, a.h0, int(BH));
    if (a.hmask) mask_units(masked, a.h + init * BH, a.hmask, B, H, UnitRange{0, H});

    // Threads own hidden units (see lstm_forward): one barrier per step with linear_before_reset; without
    // it a second one, because R_n multiplies r * h_rec of every unit.
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, G))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        WT.pack_units(u);
        RT.pack_units(u);
        RnT.pack_units(u);  // the panels of this thread's units, by this thread
        for (int s0 = 0; s0 < T; s0 += chunk) {
            const int n = std::min(chunk, T - s0);
            const int t_lo = a.reverse ? T - s0 - n : s0;
            S* pre = pre_base + (a.training ? t_lo * BL : 0);
            // pre[t][:, 0:3H] = x[t] W^T + b_ih for every t of the chunk (b_hh joins in the step)
            project_units<S>(pre, LD, a.x + std::size_t(t_lo) * B * I, WT, a.bW, nullptr, n * B, I, G, H, u);

            for (int k = 0; k < n; ++k) {
                const int s = s0 + k;
                const Step st = step_at(s, T, a.reverse, a.training);
                const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
                S* g = pre + (st.t - t_lo) * BL;                               // [B, 4H]
                const S* h_prev = a.h + st.prev * BH;
                S* h_cur = a.h + st.cur * BH;
                S* gh = hidden;
                const S* h_rec = a.hmask ? masked + (s & 1) * BH : h_prev;
                // gh[:, 0:2H] = h_rec R_rz^T, and with linear_before_reset also gh[:, 2H:3H] = h_rec R_n^T
                RT.multiply_units(gh, G, h_rec, H, rows, u.u0, u.u1, false);

                // r = σ(g_r + gh_r + b_hr);  z = σ(g_z + gh_z + b_hz);  q = gh_n + b_hn  or  r * h_rec
                for (int b = 0; b < B; ++b) {
                    S* gb = g + b * std::size_t(LD);
                    const S* ghb = gh + b * std::size_t(G);
                    const S* hr = h_rec + b * std::size_t(H);
                    if (!valid(a.lengths, b, st.t)) {
                        zero_row(gb + 3 * H + u.u0, u.u1 - u.u0);
                        continue;
                    }
#pragma omp simd
                    for (int j = u.u0; j < u.u1; ++j) {
                        const S r = sigmoid(gb[j] + ghb[j] + bR[j]);
                        gb[j] = r;
                        gb[H + j] = sigmoid(gb[H + j] + ghb[H + j] + bR[H + j]);
                        gb[3 * H + j] = lbr ? ghb[2 * H + j] + bR[2 * H + j] : r * hr[j];
                    }
                }
                // without linear_before_reset: gh[:, 2H:3H] = (r * h_rec) R_n^T, once every unit's r is known
                if (!lbr) {
                    step_end.arrive_and_wait();
                    RnT.multiply_units(gh + 2 * H, G, g + 3 * H, LD, rows, u.u0, u.u1, false);
                }

                // n = tanh(g_n + r q)  or  tanh(g_n + gh_n + b_hn);   h = (1 - z) n + z h_prev
                for (int b = 0; b < B; ++b) {
                    S* gb = g + b * std::size_t(LD);
                    const S* ghb = gh + b * std::size_t(G);
                    const S* hp = h_prev + b * std::size_t(H);
                    S* hc = h_cur + b * std::size_t(H);
                    S* yb = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                    if (!valid(a.lengths, b, st.t)) {
                        copy_row(hc + u.u0, hp + u.u0, u.u1 - u.u0);
                        zero_row(yb + u.u0, u.u1 - u.u0);
                        continue;
                    }
#pragma omp simd
                    for (int j = u.u0; j < u.u1; ++j) {
                        const S r = gb[j], z = gb[H + j];
                        const S hidden_n = lbr ? r * gb[3 * H + j] : ghb[2 * H + j] + bR[2 * H + j];
                        const S nn = tanh_(gb[2 * H + j] + hidden_n);
                        const S h = (S(1) - z) * nn + z * hp[j];
                        gb[2 * H + j] = nn;
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
void gru_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 3 * H, LD = gru_gate_stride(H);
    const std::size_t BH = std::size_t(B) * H, BL = std::size_t(B) * LD;
    const int TB = T * B;
    // dG[t, b] = [dr', dz', dn', dq]: gradients w.r.t. the pre-activations of r, z, n (input side) and
    // w.r.t. the recurrent candidate term (R_n h + b_hn, or R_n (r h) + b_hn).
    Scratch<S> mem;
    S* dgates = mem.take(std::size_t(T) * BL);
    S* carry = mem.take(4 * BH);  // dh, dh_next, d(r h_rec), d(h_rec): [B, H] each
    S* dh = carry;
    S* dh_next = dh + BH;
    S* drh = dh_next + BH;
    S* dh_rec = drh + BH;
    set_state(dh, a.dh_n, int(BH));
    const S* R_n = a.R + std::size_t(2) * H * H;
    // R_rz [2H, H] and R_n [H, H], read by every step: copied into contiguous panels once
    const auto Rrz = WeightOperand<S>::direct(a.R, H, 2 * H, H, mem, T > 1, true);
    const auto Rn = WeightOperand<S>::direct(R_n, H, H, H, mem, T > 1, true);

    const bool lbr = a.linear_before_reset;

    // Threads own hidden units (see lstm_backward): one barrier per step between the pointwise pass and
    // the products; without linear_before_reset a second one, as dr' needs d(r h_rec) = dq R_n first.
    TeamBarrier step_end;
#pragma omp parallel if (team_loop<S>(B, H, G))
    {
        const UnitRange u = join_team(step_end, H, panel_width<S>());
        Rrz.pack_units(u);
        Rn.pack_units(u);  // the panels of this thread's units, by this thread
        const int un = u.u1 - u.u0;
        S *dh_t = dh, *dh_n = dh_next;  // each thread swaps its own copies, in step
        for (int s = T - 1; s >= 0; --s) {
            const Step st = step_at(s, T, a.reverse, true);
            const int rows = active_rows(a.lengths, B, st.t);  // rows past it have ended
            const S* g = a.gates + st.t * BL;
            const S* h_prev = a.h + st.prev * BH;
            S* dg = dgates + st.t * BL;

            // dh_t = dh + dy_t;  dn' = dh_t (1-z)(1-n²);  dz' = dh_t (h_prev - n) z(1-z);  dh_prev = dh_t z + ...
            // linear_before_reset: dq = dn' r;  dr' = dn' q r(1-r)
            for (int b = 0; b < B; ++b) {
                const S* gb = g + b * std::size_t(LD);
                const S* hp = h_prev + b * std::size_t(H);
                const S* dyb = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
                S* dgb = dg + b * std::size_t(LD);
                S* dhb = dh_t + b * std::size_t(H);
                S* dhn = dh_n + b * std::size_t(H);
                if (!valid(a.lengths, b, st.t)) {
                    for (int gate = 0; gate < 4; ++gate) zero_row(dgb + gate * H + u.u0, un);
                    copy_row(dhn + u.u0, dhb + u.u0, un);
                    continue;
                }
#pragma omp simd
                for (int j = u.u0; j < u.u1; ++j) {
                    const S r = gb[j], z = gb[H + j], nn = gb[2 * H + j], q = gb[3 * H + j];
                    const S dht = dhb[j] + dyb[j];
                    const S dnp = dht * (S(1) - z) * (S(1) - nn * nn);
                    dgb[H + j] = dht * (hp[j] - nn) * z * (S(1) - z);
                    dgb[2 * H + j] = dnp;
                    if (lbr) {
                        dgb[j] = dnp * q * r * (S(1) - r);
                        dgb[3 * H + j] = dnp * r;
                    } else {
                        dgb[3 * H + j] = dnp;
                    }
                    dhn[j] = dht * z;
                }
            }
            step_end.arrive_and_wait();
            // Gradients w.r.t. the recurrent input h_rec go straight into dh_prev, or with a dropout mask into
            // dh_rec first and then dh_prev += dh_rec * hmask.
            S* drec = a.hmask ? dh_rec : dh_n;
            if (lbr) {
                Rn.multiply_units(drec, H, dg + 3 * H, LD, rows, u.u0, u.u1, a.hmask == nullptr);  // dq R_n
            } else {
                // d(r h_rec) = dq R_n;  dr' = d(r h_rec) h_rec r(1-r);  d(h_rec) += d(r h_rec) r
                Rn.multiply_units(drh, H, dg + 3 * H, LD, rows, u.u0, u.u1, false);
                for (int b = 0; b < B; ++b) {
                    const std::size_t row = b * std::size_t(H);
                    S* drecb = drec + row;
                    if (!valid(a.lengths, b, st.t)) {
                        if (a.hmask) zero_row(drecb + u.u0, un);
                        continue;
                    }
                    const S* gb = g + b * std::size_t(LD);
                    const S* hp = h_prev + row;
                    const S* mb = a.hmask ? a.hmask + row : nullptr;
                    const S* drhb = drh + row;
                    S* dgb = dg + b * std::size_t(LD);
#pragma omp simd
                    for (int j = u.u0; j < u.u1; ++j) {
                        const S r = gb[j];
                        const S hr = mb ? hp[j] * mb[j] : hp[j];
                        dgb[j] = drhb[j] * hr * r * (S(1) - r);
                        drecb[j] = (mb ? S(0) : drecb[j]) + drhb[j] * r;
                    }
                }
                step_end.arrive_and_wait();
            }
            Rrz.multiply_units(drec, H, dg, LD, rows, u.u0, u.u1, true);  // += [dr' dz'] R_rz
            if (a.hmask) add_masked_units(dh_n, dh_rec, a.hmask, rows, H, u);
            std::swap(dh_t, dh_n);
        }
    }
    if (T % 2) std::swap(dh, dh_next);  // where the threads' last swap left the gradient w.r.t. h0
    if (a.dh0) copy_row(a.dh0, dh, int(BH));

    // Weight gradients over all T*B rows at once. The candidate's recurrent weights multiply h_rec
    // (linear_before_reset) or r * h_rec (saved as q).
    std::vector<S> masked_all;
    const S* h_prev_all = recurrent_inputs(masked_all, a.h + (a.reverse ? BH : 0), a.hmask, T, BH);  // [T, B, H]
    const S* dG = dgates;
    WeightOperand<S>::direct(a.W, I, G, I, mem, true).multiply(a.dx, I, dG, LD, TB, a.dx_accumulate);  // dx (+)= dG W
    add_transposed_product(a.dW, I, dG, LD, G, a.x, I, TB, I);
    add_transposed_product(a.dR, H, dG, LD, 2 * H, h_prev_all, H, TB, H);
    if (a.linear_before_reset)
        add_transposed_product(a.dR + 2 * H * H, H, dG + 3 * H, LD, H, h_prev_all, H, TB, H);
    else
        add_transposed_product(a.dR + 2 * H * H, H, dG + 3 * H, LD, H, a.gates + 3 * H, LD, TB, H);
    if (a.dbW) add_column_sums(a.dbW, dG, TB, G, LD);
    if (a.dbR) {
        add_column_sums(a.dbR, dG, TB, 2 * H, LD);
        add_column_sums(a.dbR + 2 * H, dG + 3 * H, TB, H, LD);
    }
}

template void gru_forward<float>(const SeqForward<float>&);
template void gru_forward<double>(const SeqForward<double>&);
template void gru_backward<float>(const SeqBackward<float>&);
template void gru_backward<double>(const SeqBackward<double>&);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
