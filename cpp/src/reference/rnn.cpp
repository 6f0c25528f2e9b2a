// Reference simple (Elman) RNN, one direction over a sequence: h = act(W x + b_ih + R h_prev + b_hh),
// act = tanh (rnn_tanh) or max(., 0) (rnn_relu). Saved per (t, b): h.
#include "cells/registry.hpp"
#include "reference/common.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace reference {

template <class S>
void rnn_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    const bool relu = a.cell->info.kind == CellKind::RNN_RELU;
    std::vector<S> pre(BH), h_rec(BH);
    const int init = initial_slot(T, a.reverse, a.training);
    load_state(a.state[0] + init * BH, a.state0[0], BH);
    for (int s = 0; s < T; ++s) {
        const Step st = step_at(s, T, a.reverse, a.training);
        const S* hp = a.state[0] + st.prev * BH;
        S* hn = a.state[0] + st.cur * BH;
        recurrent_input(h_rec.data(), hp, a.hmask, BH);
        matmul_bt(pre.data(), H, a.x + std::size_t(st.t) * B * I, I, a.W, I, B, H, I, false);
        matmul_bt(pre.data(), H, h_rec.data(), H, a.R, H, B, H, H, true);
        for (int b = 0; b < B; ++b) {
            S* y = a.y + (std::size_t(st.t) * B + b) * a.ldy;
            for (int j = 0; j < H; ++j) {
                const std::size_t k = std::size_t(b) * H + j;
                if (a.lengths && st.t >= a.lengths[b]) { hn[k] = hp[k], y[j] = S(0); continue; }
                const S v = pre[k] + (a.bW ? a.bW[j] + a.bR[j] : S(0));
                hn[k] = y[j] = relu ? (v > 0 ? v : S(0)) : std::tanh(v);
                if (a.training) a.gates[(std::size_t(st.t) * B + b) * H + j] = hn[k];
            }
        }
    }
    store_state(a.state_n[0], a.state[0] + final_slot(T, a.reverse, a.training) * BH, BH);
}

template <class S>
void rnn_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    const bool relu = a.cell->info.kind == CellKind::RNN_RELU;
    std::vector<S> dh(BH), dh_prev(BH), h_rec(BH), dG(std::size_t(T) * BH);
    load_state(dh.data(), a.dstate_n[0], BH);
    for (int s = T - 1; s >= 0; --s) {
        const Step st = step_at(s, T, a.reverse, true);
        S* dg = dG.data() + std::size_t(st.t) * BH;
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < H; ++j) {  // dg = (dh + dy) act'(h)
                const std::size_t k = std::size_t(b) * H + j;
                if (a.lengths && st.t >= a.lengths[b]) { dg[k] = 0; continue; }
                const S h = a.gates[std::size_t(st.t) * BH + k];
                const S dy = a.dy[(std::size_t(st.t) * B + b) * a.ldy + j];
                dg[k] = (dh[k] + dy) * (relu ? (h > 0 ? S(1) : S(0)) : 1 - h * h);
            }
        recurrent_state_grad(dh_prev.data(), dh.data(), dg, H, a.R, H, B, H, st.t, a.lengths, a.hmask);  // dg R
        dh.swap(dh_prev);
    }
    store_state(a.dstate0[0], dh.data(), BH);

    input_grads(a, dG.data(), H, H);
    for (int t = 0; t < T; ++t) {  // dR += dG^T h_rec
        recurrent_input(h_rec.data(), a.state[0] + (t + (a.reverse ? 1 : 0)) * BH, a.hmask, BH);
        add_recurrent_grads(a.dR, a.dbR, dG.data() + std::size_t(t) * BH, H, h_rec.data(), H, B, H, H);
    }
}

template void rnn_forward<float>(const SeqForward<float>&);
template void rnn_forward<double>(const SeqForward<double>&);
template void rnn_backward<float>(const SeqBackward<float>&);
template void rnn_backward<double>(const SeqBackward<double>&);

}  // namespace reference
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
