// Simple (Elman) RNN: h = act(W x + b_ih + R h_prev + b_hh), act = tanh or relu.
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
void rnn_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H;
    const std::size_t BH = std::size_t(B) * H;
    const int chunk = a.training ? T : std::min(T, kInferenceChunk);
    std::vector<S> scratch(a.training ? 0 : std::size_t(chunk) * BH);
    S* pre_base = a.training ? a.gates : scratch.data();
    std::vector<S> masked(a.hmask ? BH : 0);
    const bool pack = worth_packing(T, B);
    const auto WT = WeightOperand<S>::transposed(a.W, I, I, H, pack);  // W^T [I, H]
    const auto RT = WeightOperand<S>::transposed(a.R, H, H, H, pack);  // R^T [H, H]
    set_state(a.h + initial_slot(T, a.reverse, a.training) * BH, a.h0, int(BH));

    for (int s0 = 0; s0 < T; s0 += chunk) {
        const int n = std::min(chunk, T - s0);
        const int t_lo = a.reverse ? T - s0 - n : s0;
        S* pre = pre_base + (a.training ? t_lo * BH : 0);
        project_inputs(pre, H, a.x + std::size_t(t_lo) * B * I, WT, a.bW, a.bR, n * B, I, H);

        for (int k = 0; k < n; ++k) {
            const Step st = step_at(s0 + k, T, a.reverse, a.training);
            S* g = pre + (st.t - t_lo) * BH;
            const S* h_prev = a.h + st.prev * BH;
            S* h_cur = a.h + st.cur * BH;
            const S* h_rec = recurrent_input(masked.data(), h_prev, a.hmask, BH);
            RT.multiply(g, H, h_rec, H, B, true);  // g += h_rec R^T

            // h = tanh(g) or max(g, 0)
#pragma omp parallel for if (long(BH) >= kParallelPointwise)
            for (int b = 0; b < B; ++b) {
                S* gb = g + b * std::size_t(H);
                const S* hp = h_prev + b * std::size_t(H);
                S* hc = h_cur + b * std::size_t(H);
                S* yb = a.y + (std::size_t(st.t) * B + b) * a.ldy;
                if (!valid(a.lengths, b, st.t)) {
                    copy_row(hc, hp, H);
                    zero_row(yb, H);
                    continue;
                }
#pragma omp simd
                for (int j = 0; j < H; ++j) {
                    const S h = a.relu ? std::max(gb[j], S(0)) : tanh_(gb[j]);
                    gb[j] = h;
                    hc[j] = h;
                    yb[j] = h;
                }
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
    std::vector<S> dgates(std::size_t(T) * BH);  // [T, B, H] gradients w.r.t. pre-activations
    std::vector<S> carry(3 * BH);  // dh, dh_next, d(h_rec)
    S* dh = carry.data();
    S* dh_next = dh + BH;
    S* dh_rec = dh_next + BH;
    set_state(dh, a.dh_n, int(BH));
    const auto R = WeightOperand<S>::direct(a.R, H, H, H);

    for (int s = T - 1; s >= 0; --s) {
        const Step st = step_at(s, T, a.reverse, true);
        const S* g = a.gates + st.t * BH;
        S* dg = dgates.data() + st.t * BH;
        // dg = (dh + dy_t) act'(h): tanh' = 1 - h², relu' = [h > 0];  dh_prev = dg R
#pragma omp parallel for if (long(BH) >= kParallelPointwise)
        for (int b = 0; b < B; ++b) {
            const S* gb = g + b * std::size_t(H);
            const S* dyb = a.dy + (std::size_t(st.t) * B + b) * a.ldy;
            S* dgb = dg + b * std::size_t(H);
            S* dhb = dh + b * std::size_t(H);
            S* dhn = dh_next + b * std::size_t(H);
            if (!valid(a.lengths, b, st.t)) {
                zero_row(dgb, H);
                copy_row(dhn, dhb, H);
                continue;
            }
#pragma omp simd
            for (int j = 0; j < H; ++j) {
                const S h = gb[j];
                const S d = a.relu ? (h > S(0) ? S(1) : S(0)) : S(1) - h * h;
                dgb[j] = (dhb[j] + dyb[j]) * d;
                dhn[j] = S(0);
            }
        }
        if (a.hmask) {
            R.multiply(dh_rec, H, dg, H, B, false);
            add_masked(dh_next, dh_rec, a.hmask, BH);
        } else {
            R.multiply(dh_next, H, dg, H, B, true);
        }
        std::swap(dh, dh_next);
    }
    if (a.dh0) copy_row(a.dh0, dh, int(BH));

    std::vector<S> masked_all;
    const S* h_prev_all = recurrent_inputs(masked_all, a.h + (a.reverse ? BH : 0), a.hmask, T, BH);
    const S* dG = dgates.data();
    WeightOperand<S>::direct(a.W, I, H, I).multiply(a.dx, I, dG, H, TB, a.dx_accumulate);  // dx (+)= dG W
    gemm<S>(true, false, H, I, TB, S(1), dG, H, a.x, I, S(1), a.dW, I);
    gemm<S>(true, false, H, H, TB, S(1), dG, H, h_prev_all, H, S(1), a.dR, H);
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
