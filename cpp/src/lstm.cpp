// LSTM with forget gate (Gers et al. 1999) and optional peepholes (Gers & Schmidhuber 2000).
// Shape legend and gradient rule: see rnnkit/config.hpp; time/slot layout: see kernels.hpp.
#include <algorithm>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "weights.hpp"
#include "pointwise.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
void lstm_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 4 * H;
    const std::size_t BH = std::size_t(B) * H, BG = std::size_t(B) * G;
    const int chunk = a.training ? T : std::min(T, kInferenceChunk);
    std::vector<S> scratch(a.training ? 0 : std::size_t(chunk) * BG);     // inference: [chunk, B, G]
    std::vector<S> no_peephole(a.P ? 0 : std::size_t(3) * H, S(0));
    const S* P = a.P ? a.P : no_peephole.data();
    const S *Pi = P, *Pf = P + H, *Po = P + 2 * H;                         // [H] each
    S* pre_base = a.training ? a.gates : scratch.data();
    std::vector<S> masked(a.hmask ? BH : 0);                              // [B, H] h_prev * hmask
    const bool pack = worth_packing(T, B);
    const auto WT = WeightOperand<S>::transposed(a.W, I, I, G, pack);    // W^T [I, G]
    const auto RT = WeightOperand<S>::transposed(a.R, H, H, G, pack);    // R^T [H, G]

    const int init = initial_slot(T, a.reverse, a.training);
    set_state(a.h + init * BH, a.h0, int(BH));
    set_state(a.c + init * BH, a.c0, int(BH));

    for (int s0 = 0; s0 < T; s0 += chunk) {
        const int n = std::min(chunk, T - s0);
        const int t_lo = a.reverse ? T - s0 - n : s0;  // the chunk covers times [t_lo, t_lo + n)
        S* pre = pre_base + (a.training ? t_lo * BG : 0);
        // pre[t] = x[t] W^T + b_ih + b_hh for every t of the chunk: one GEMM over n*B rows
        project_inputs(pre, G, a.x + std::size_t(t_lo) * B * I, WT, a.bW, a.bR, n * B, I, G);

        for (int k = 0; k < n; ++k) {
            const Step st = step_at(s0 + k, T, a.reverse, a.training);
            S* g = pre + (st.t - t_lo) * BG;                                // [B, G]
            const S* h_prev = a.h + st.prev * BH;
            const S* c_prev = a.c + st.prev * BH;
            S* h_cur = a.h + st.cur * BH;
            S* c_cur = a.c + st.cur * BH;
            const S* h_rec = recurrent_input(masked.data(), h_prev, a.hmask, BH);
            RT.multiply(g, G, h_rec, H, B, true);                            // g += h_rec R^T

            // i = σ(g_i + p_i c_prev)   f = σ(g_f + p_f c_prev)   z = tanh(g_g)
            // c = f c_prev + i z        o = σ(g_o + p_o c)        h = o tanh(c)
#pragma omp parallel for if (long(BG) >= kParallelPointwise)
            for (int b = 0; b < B; ++b) {
                S* gb = g + b * std::size_t(G);
                const S* hp = h_prev + b * std::size_t(H);
                const S* cp = c_prev + b * std::size_t(H);
                S* hc = h_cur + b * std::size_t(H);
                S* cc = c_cur + b * std::size_t(H);
                S* yb = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                if (!valid(a.lengths, b, st.t)) {
                    copy_row(hc, hp, H);
                    copy_row(cc, cp, H);
                    zero_row(yb, H);
                    continue;
                }
#pragma omp simd
                for (int j = 0; j < H; ++j) {
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
    std::vector<S> dgates(std::size_t(T) * BG);        // [T, B, G] gradients w.r.t. pre-activations
    std::vector<S> carry(4 * BH);                      // dh, dh_next, dc, d(h_rec): [B, H] each
    S* dh = carry.data();
    S* dh_next = dh + BH;
    S* dc = dh_next + BH;
    S* dh_rec = dc + BH;
    set_state(dh, a.dh_n, int(BH));
    set_state(dc, a.dc_n, int(BH));
    std::vector<S> no_peephole(a.P ? 0 : std::size_t(3) * H, S(0));
    const S* P = a.P ? a.P : no_peephole.data();
    const S *Pi = P, *Pf = P + H, *Po = P + 2 * H;
    const auto R = WeightOperand<S>::direct(a.R, H, G, H);  // R [G, H]

    for (int s = T - 1; s >= 0; --s) {
        const Step st = step_at(s, T, a.reverse, true);
        const S* g = a.gates + st.t * BG;
        const S* c_prev = a.c + st.prev * BH;
        const S* c_cur = a.c + st.cur * BH;
        S* dg = dgates.data() + st.t * BG;

        // dh_t = dh + dy_t;  do = dh_t tanh(c);  dc_t = dc + dh_t o (1 - tanh²c) + do' p_o
        // di' = dc_t z i(1-i);  df' = dc_t c_prev f(1-f);  dz' = dc_t i (1-z²);  do' = do o(1-o)
        // dc_prev = dc_t f + di' p_i + df' p_f;  dh_prev = dgates R (after the loop body)
#pragma omp parallel for if (long(BG) >= kParallelPointwise)
        for (int b = 0; b < B; ++b) {
            const S* gb = g + b * std::size_t(G);
            const S* cp = c_prev + b * std::size_t(H);
            const S* cc = c_cur + b * std::size_t(H);
            const S* dyb = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
            S* dgb = dg + b * std::size_t(G);
            S* dhb = dh + b * std::size_t(H);
            S* dhn = dh_next + b * std::size_t(H);
            S* dcb = dc + b * std::size_t(H);
            if (!valid(a.lengths, b, st.t)) {  // state passed through unchanged: so do its gradients
                zero_row(dgb, G);
                copy_row(dhn, dhb, H);
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; ++j) {
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
        if (a.hmask) {  // dh_prev += (dgates R) * hmask
            R.multiply(dh_rec, H, dg, G, B, false);
            add_masked(dh_next, dh_rec, a.hmask, BH);
        } else {        // dh_prev += dgates R
            R.multiply(dh_next, H, dg, G, B, true);
        }
        std::swap(dh, dh_next);
    }
    if (a.dh0) copy_row(a.dh0, dh, int(BH));
    if (a.dc0) copy_row(a.dc0, dc, int(BH));

    // Weight gradients: large GEMMs over all T*B rows at once.
    std::vector<S> masked_all;
    const S* h_prev_all = recurrent_inputs(masked_all, a.h + (a.reverse ? BH : 0), a.hmask, T, BH);  // [T, B, H]
    WeightOperand<S>::direct(a.W, I, G, I).multiply(a.dx, I, dgates.data(), G, TB, a.dx_accumulate);  // dx (+)= dG W
    gemm<S>(true, false, G, I, TB, S(1), dgates.data(), G, a.x, I, S(1), a.dW, I);     // dW += dG^T x
    gemm<S>(true, false, G, H, TB, S(1), dgates.data(), G, h_prev_all, H, S(1), a.dR, H);  // dR += dG^T h_rec
    if (a.dbW) add_column_sums(a.dbW, dgates.data(), TB, G, G);
    if (a.dbR) add_column_sums(a.dbR, dgates.data(), TB, G, G);
    if (a.dP) {
        // dp_i += Σ di' c_prev;  dp_f += Σ df' c_prev;  dp_o += Σ do' c
        for (int t = 0; t < T; ++t) {
            const S* cp_t = a.c + (t + (a.reverse ? 1 : 0)) * BH;
            const S* cc_t = a.c + (t + (a.reverse ? 0 : 1)) * BH;
            for (int b = 0; b < B; ++b) {
                const S* dgb = dgates.data() + t * BG + b * std::size_t(G);
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
