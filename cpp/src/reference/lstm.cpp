// Reference LSTM (forget gate; peepholes P [3, H] rows i f o when given), one direction over a sequence.
//   i = σ(W_i x + R_i h + b_i + p_i c_prev)   f = σ(W_f x + R_f h + b_f + p_f c_prev)   z = tanh(W_g x + R_g h + b_g)
//   c = f c_prev + i z                        o = σ(W_o x + R_o h + b_o + p_o c)          h = o tanh(c)
// Saved per (t, b): i f z o. h is multiplied by the recurrent dropout mask before R (h_rec).
#include "reference/common.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace reference {

template <class S>
void lstm_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 4 * H;
    const std::size_t BH = std::size_t(B) * H;
    std::vector<S> pre(std::size_t(B) * G), h_rec(BH), zeros(3 * std::size_t(H), S(0));
    const S* P = a.extra ? a.extra : zeros.data();
    const int init = initial_slot(T, a.reverse, a.training);
    load_state(a.state[0] + init * BH, a.state0[0], BH);
    load_state(a.state[1] + init * BH, a.state0[1], BH);
    for (int s = 0; s < T; ++s) {
        const Step st = step_at(s, T, a.reverse, a.training);
        const S *hp = a.state[0] + st.prev * BH, *cp = a.state[1] + st.prev * BH;
        S *hn = a.state[0] + st.cur * BH, *cn = a.state[1] + st.cur * BH;
        recurrent_input(h_rec.data(), hp, a.hmask, BH);
        matmul_bt(pre.data(), G, a.x + std::size_t(st.t) * B * I, I, a.W, I, B, G, I, false);  // x W^T
        matmul_bt(pre.data(), G, h_rec.data(), H, a.R, H, B, G, H, true);                      // + h_rec R^T
        for (int b = 0; b < B; ++b) {
            S* y = a.y + (std::size_t(st.t) * B + b) * a.ldy;
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                if (a.lengths && st.t >= a.lengths[b]) {  // ended: the state passes through, the output is 0
                    hn[k] = hp[k], cn[k] = cp[k], y[j] = S(0);
                    continue;
                }
                S g[4];
                for (int q = 0; q < 4; ++q)
                    g[q] = pre[std::size_t(b) * G + q * H + j] + (a.bW ? a.bW[q * H + j] + a.bR[q * H + j] : S(0));
                const S i = sigm(g[0] + P[j] * cp[k]), f = sigm(g[1] + P[H + j] * cp[k]), z = std::tanh(g[2]);
                const S c = f * cp[k] + i * z;
                const S o = sigm(g[3] + P[2 * H + j] * c);
                cn[k] = c;
                hn[k] = y[j] = o * std::tanh(c);
                if (a.training) {
                    S* saved = a.gates + (std::size_t(st.t) * B + b) * G;
                    saved[j] = i, saved[H + j] = f, saved[2 * H + j] = z, saved[3 * H + j] = o;
                }
            }
        }
    }
    const int fin = final_slot(T, a.reverse, a.training);
    store_state(a.state_n[0], a.state[0] + fin * BH, BH);
    store_state(a.state_n[1], a.state[1] + fin * BH, BH);
}

template <class S>
void lstm_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, H = a.H, G = 4 * H;
    const std::size_t BH = std::size_t(B) * H;
    std::vector<S> dh(BH), dc(BH), dh_prev(BH), h_rec(BH), dG(std::size_t(T) * B * G), zeros(3 * std::size_t(H), S(0));
    const S* P = a.extra ? a.extra : zeros.data();
    load_state(dh.data(), a.dstate_n[0], BH);
    load_state(dc.data(), a.dstate_n[1], BH);
    for (int s = T - 1; s >= 0; --s) {
        const Step st = step_at(s, T, a.reverse, true);
        const S *cp = a.state[1] + st.prev * BH, *cn = a.state[1] + st.cur * BH;
        for (int b = 0; b < B; ++b) {
            const bool ended = a.lengths && st.t >= a.lengths[b];
            const S* g = a.gates + (std::size_t(st.t) * B + b) * G;
            const S* dy = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
            S* dg = dG.data() + (std::size_t(st.t) * B + b) * G;
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                if (ended) {  // gradients pass through an ended step unchanged
                    dg[j] = dg[H + j] = dg[2 * H + j] = dg[3 * H + j] = S(0);
                    continue;
                }
                const S i = g[j], f = g[H + j], z = g[2 * H + j], o = g[3 * H + j], tc = std::tanh(cn[k]);
                const S dht = dh[k] + dy[j];
                const S dop = dht * tc * o * (1 - o);
                const S dct = dc[k] + dht * o * (1 - tc * tc) + dop * P[2 * H + j];
                const S dip = dct * z * i * (1 - i), dfp = dct * cp[k] * f * (1 - f), dzp = dct * i * (1 - z * z);
                dc[k] = dct * f + dip * P[j] + dfp * P[H + j];
                dg[j] = dip, dg[H + j] = dfp, dg[2 * H + j] = dzp, dg[3 * H + j] = dop;
            }
        }
        recurrent_state_grad(dh_prev.data(), dh.data(), dG.data() + std::size_t(st.t) * B * G, G, a.R, G, B, H, st.t,
                             a.lengths, a.hmask);
        dh.swap(dh_prev);
    }
    store_state(a.dstate0[0], dh.data(), BH);
    store_state(a.dstate0[1], dc.data(), BH);

    input_grads(a, dG.data(), G, G);
    for (int t = 0; t < T; ++t) {
        const int prev = t + (a.reverse ? 1 : 0), cur = t + (a.reverse ? 0 : 1);
        const S* dG_t = dG.data() + std::size_t(t) * B * G;
        recurrent_input(h_rec.data(), a.state[0] + prev * BH, a.hmask, BH);
        add_recurrent_grads(a.dR, a.dbR, dG_t, G, h_rec.data(), H, B, G, H);  // dR += dG^T h_rec
        if (!a.dextra) continue;
        for (int b = 0; b < B; ++b) {  // dp_i += di' c_prev;  dp_f += df' c_prev;  dp_o += do' c
            const S* dg = dG_t + std::size_t(b) * G;
            const S *cp = a.state[1] + prev * BH + std::size_t(b) * H, *cn = a.state[1] + cur * BH + std::size_t(b) * H;
            for (int j = 0; j < H; ++j) {
                a.dextra[j] += dg[j] * cp[j];
                a.dextra[H + j] += dg[H + j] * cp[j];
                a.dextra[2 * H + j] += dg[3 * H + j] * cn[j];
            }
        }
    }
}

template void lstm_forward<float>(const SeqForward<float>&);
template void lstm_forward<double>(const SeqForward<double>&);
template void lstm_backward<float>(const SeqBackward<float>&);
template void lstm_backward<double>(const SeqBackward<double>&);

}  // namespace reference
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
