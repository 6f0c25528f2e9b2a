// Reference GRU, gates r z n, both conventions, one direction over a sequence:
//   r = σ(W_r x + b_ir + R_r h + b_hr)    z = σ(W_z x + b_iz + R_z h + b_hz)    h' = (1 - z) n + z h
//   linear_before_reset:  q = R_n h + b_hn,  n = tanh(W_n x + b_in + r q)
//   otherwise (Cho):      q = r h,           n = tanh(W_n x + b_in + R_n q + b_hn)
// Saved per (t, b): r z n q. h is multiplied by the recurrent dropout mask before R (h_rec).
#include "reference/common.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace reference {

template <class S>
void gru_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, G = 3 * H;
    const std::size_t BH = std::size_t(B) * H;
    const bool lbr = a.opt->linear_before_reset;
    const S* Rn = a.R + std::size_t(2) * H * H;  // [H, H]
    std::vector<S> xw(std::size_t(B) * G), rec(std::size_t(B) * G), h_rec(BH), q(BH), r(BH), z(BH);
    auto bias = [](const S* b, int k) { return b ? b[k] : S(0); };
    const int init = initial_slot(T, a.reverse, a.training);
    load_state(a.state[0] + init * BH, a.state0[0], BH);
    for (int s = 0; s < T; ++s) {
        const Step st = step_at(s, T, a.reverse, a.training);
        const S* hp = a.state[0] + st.prev * BH;
        S* hn = a.state[0] + st.cur * BH;
        recurrent_input(h_rec.data(), hp, a.hmask, BH);
        matmul_bt(xw.data(), G, a.x + std::size_t(st.t) * B * I, I, a.W, I, B, G, I, false);  // x W^T
        matmul_bt(rec.data(), G, h_rec.data(), H, a.R, H, B, lbr ? G : 2 * H, H, false);       // h_rec R^T
        for (std::size_t k = 0; k < BH; ++k) {
            const int b = int(k / H), j = int(k % H);
            r[k] = sigm(xw[b * G + j] + bias(a.bW, j) + rec[b * G + j] + bias(a.bR, j));
            z[k] = sigm(xw[b * G + H + j] + bias(a.bW, H + j) + rec[b * G + H + j] + bias(a.bR, H + j));
            q[k] = lbr ? rec[b * G + 2 * H + j] + bias(a.bR, 2 * H + j) : r[k] * h_rec[k];
        }
        if (!lbr) matmul_bt(rec.data() + 2 * H, G, q.data(), H, Rn, H, B, H, H, false);  // R_n (r h_rec)
        for (int b = 0; b < B; ++b) {
            S* y = a.y + (std::size_t(st.t) * B + b) * a.ldy;
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                S* saved = a.training ? a.gates + (std::size_t(st.t) * B + b) * 4 * H : nullptr;
                if (a.lengths && st.t >= a.lengths[b]) {  // ended: the state passes through, the output is 0
                    hn[k] = hp[k], y[j] = S(0);
                    if (saved) saved[j] = saved[H + j] = saved[2 * H + j] = saved[3 * H + j] = S(0);
                    continue;
                }
                const S cand = lbr ? r[k] * q[k] : rec[b * G + 2 * H + j] + bias(a.bR, 2 * H + j);
                const S n = std::tanh(xw[b * G + 2 * H + j] + bias(a.bW, 2 * H + j) + cand);
                hn[k] = y[j] = (1 - z[k]) * n + z[k] * hp[k];
                if (saved) saved[j] = r[k], saved[H + j] = z[k], saved[2 * H + j] = n, saved[3 * H + j] = q[k];
            }
        }
    }
    store_state(a.state_n[0], a.state[0] + final_slot(T, a.reverse, a.training) * BH, BH);
}

template <class S>
void gru_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, H = a.H, G = 3 * H, LD = 4 * H;
    const std::size_t BH = std::size_t(B) * H;
    const bool lbr = a.opt->linear_before_reset;
    const S* Rn = a.R + std::size_t(2) * H * H;
    // dG[t, b] = [dr' dz' dn' dq]: pre-activation gradients of r z n, and of q's linear term (R_n h or R_n q)
    std::vector<S> dh(BH), dh_prev(BH), h_rec(BH), dmid(BH), drec(BH), dG(std::size_t(T) * B * LD);
    load_state(dh.data(), a.dstate_n[0], BH);
    for (int s = T - 1; s >= 0; --s) {
        const Step st = step_at(s, T, a.reverse, true);
        const S* hp = a.state[0] + st.prev * BH;
        recurrent_input(h_rec.data(), hp, a.hmask, BH);
        S* dg_t = dG.data() + std::size_t(st.t) * B * LD;
        for (int b = 0; b < B; ++b) {
            const S* g = a.gates + (std::size_t(st.t) * B + b) * LD;
            const S* dy = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
            S* dg = dg_t + std::size_t(b) * LD;
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                if (a.lengths && st.t >= a.lengths[b]) {
                    dg[j] = dg[H + j] = dg[2 * H + j] = dg[3 * H + j] = S(0);
                    continue;
                }
                const S r = g[j], z = g[H + j], n = g[2 * H + j], q = g[3 * H + j];
                const S dht = dh[k] + dy[j];
                const S dnp = dht * (1 - z) * (1 - n * n);
                dg[H + j] = dht * (hp[k] - n) * z * (1 - z);
                dg[2 * H + j] = dnp;
                dg[3 * H + j] = lbr ? dnp * r : dnp;
                dg[j] = lbr ? dnp * q * r * (1 - r) : S(0);  // Cho: dr' needs d(r h_rec) first
                dh_prev[k] = dht * z;
            }
        }
        // d(h_rec) = dq R_n [lbr] or d(r h_rec) r [Cho], plus [dr' dz'] R_rz
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < H; ++j) {
                S acc = 0;
                for (int m = 0; m < H; ++m) acc += dg_t[std::size_t(b) * LD + 3 * H + m] * Rn[std::size_t(m) * H + j];
                dmid[std::size_t(b) * H + j] = acc;  // dq R_n
            }
        for (int b = 0; b < B; ++b) {
            S* dg = dg_t + std::size_t(b) * LD;
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                if (a.lengths && st.t >= a.lengths[b]) { drec[k] = 0; continue; }
                const S r = a.gates[(std::size_t(st.t) * B + b) * LD + j];
                if (!lbr) dg[j] = dmid[k] * h_rec[k] * r * (1 - r);
                drec[k] = lbr ? dmid[k] : dmid[k] * r;
            }
        }
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                if (a.lengths && st.t >= a.lengths[b]) { dh_prev[k] = dh[k]; continue; }
                S acc = drec[k];
                for (int m = 0; m < 2 * H; ++m) acc += dg_t[std::size_t(b) * LD + m] * a.R[std::size_t(m) * H + j];
                dh_prev[k] += a.hmask ? acc * a.hmask[k] : acc;
            }
        dh.swap(dh_prev);
    }
    store_state(a.dstate0[0], dh.data(), BH);

    input_grads(a, dG.data(), LD, G);
    for (int t = 0; t < T; ++t) {
        recurrent_input(h_rec.data(), a.state[0] + (t + (a.reverse ? 1 : 0)) * BH, a.hmask, BH);
        const S* dG_t = dG.data() + std::size_t(t) * B * LD;
        const S* q = a.gates + std::size_t(t) * B * LD + 3 * H;
        // dR_rz += [dr' dz']^T h_rec;  dR_n += dq^T (h_rec, or q = r h_rec without linear_before_reset)
        add_recurrent_grads(a.dR, a.dbR, dG_t, LD, h_rec.data(), H, B, 2 * H, H);
        add_recurrent_grads(a.dR + std::size_t(2) * H * H, a.dbR ? a.dbR + 2 * H : nullptr, dG_t + 3 * H, LD,
                            lbr ? h_rec.data() : q, lbr ? H : LD, B, H, H);
    }
}

template void gru_forward<float>(const SeqForward<float>&);
template void gru_forward<double>(const SeqForward<double>&);
template void gru_backward<float>(const SeqBackward<float>&);
template void gru_backward<double>(const SeqBackward<double>&);

}  // namespace reference
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
