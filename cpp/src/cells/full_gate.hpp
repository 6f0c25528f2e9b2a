// LSTM with full gate recurrence (Greff et al. 2016's FGR; the LSTM of Hochreiter & Schmidhuber's early papers):
// the input, forget and output gates also see the previous step's gate activations a_prev = [i, f, o]_{t-1}:
//   v = x W^T + h_prev R^T + b_ih + b_hh;   v_[i,f,o] += a_prev W_gates^T   (W_gates = weight_gates [3H, 3H]:
//   rows i, f, o of this step, columns i, f, o of the previous step)
//   i = σ(v_i + p_i c_prev)  f = σ(v_f + p_f c_prev)  g = act(v_g)  c = f c_prev + i g  o = σ(v_o + p_o c)
//   h = o act(c)
// a = [i, f, o] is a third state (width 3H, zeros at the start), so a sequence can be continued (streaming).
// The product with W_gates mixes all units of a row, so this is a row cell (cpu/row_driver.hpp).
#pragma once

#include "cells/layer_norm.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct LstmFullGateCell {
    static constexpr CellTraits traits{4, 5, 3, Recurrence::Dense, false, false, true, 3};
    static int state_width(int k, int H) { return k == 2 ? 3 * H : H; }
    // saved blocks: gate values i f g o [0,4); act(c) 4

    template <class S>
    static void forward_row(const RowForward<S>& u) {
        const CellOptions* o = u.opt;
        const int H = u.H, G = 4 * H, H3 = 3 * H;
        S* v = u.saved;
        S* a = v + G;
        const S* P = u.aux[kPeephole];
        const S* Wg = u.aux[kGateWeights];
        const S* ap = u.prev[2];
        for (int j = 0; j < G; ++j) v[j] += u.rec[j] + u.bW[j] + u.bR[j];
        for (int r = 0; r < H3; ++r) {  // rows i, f, o -> gate blocks 0, 1, 3
            S sum = 0;
            for (int k = 0; k < H3; ++k) sum += Wg[std::size_t(r) * H3 + k] * ap[k];
            v[r < 2 * H ? r : r + H] += sum;
        }
        for (int j = 0; j < H; ++j) {
            const S cp = u.prev[1][j];
            const S i = activate(o->recurrent_activation, v[j] + P[j] * cp);
            const S f = activate(o->recurrent_activation, v[H + j] + P[H + j] * cp);
            const S g = activate(o->activation, v[2 * H + j]);
            const S c = f * cp + i * g;
            const S og = activate(o->recurrent_activation, v[3 * H + j] + P[2 * H + j] * c);
            a[j] = activate(o->activation, c);
            v[j] = i, v[H + j] = f, v[2 * H + j] = g, v[3 * H + j] = og;
            u.next[1][j] = c;
            u.y[j] = u.next[0][j] = og * a[j];
            u.next[2][j] = i, u.next[2][H + j] = f, u.next[2][2 * H + j] = og;
        }
    }

    // dh_t = dh + dy;  do = dh_t act(c) + da_o;  dc_t = dc + dh_t o act'(c) + do' p_o;  di = dc_t g + da_i;
    // df = dc_t c_prev + da_f;  dv = [di', df', dg', do'];  da_prev = dv_[i,f,o] W_gates;  dW_gates += dv^T a_prev
    template <class S>
    static void backward_row(const RowBackward<S>& u) {
        const CellOptions* o = u.opt;
        const int H = u.H, G = 4 * H, H3 = 3 * H;
        const S* v = u.saved;
        const S* a = v + G;
        const S* P = u.aux[kPeephole];
        const S* Wg = u.aux[kGateWeights];
        const S* ap = u.prev[2];
        S* dv = u.dbW;
        S* da = u.dstate[2];  // in: d a after the step; out: d a_prev
        for (int j = 0; j < H; ++j) {
            const S i = v[j], f = v[H + j], g = v[2 * H + j], og = v[3 * H + j];
            const S cp = u.prev[1][j], c = u.next[1][j];
            const S dht = u.dh[j] + u.dy[j];
            const S dop = (dht * a[j] + da[2 * H + j]) * activate_grad(o->recurrent_activation, og);
            const S dct = u.dstate[1][j] + dht * og * activate_grad(o->activation, a[j]) + dop * P[2 * H + j];
            const S dip = (dct * g + da[j]) * activate_grad(o->recurrent_activation, i);
            const S dfp = (dct * cp + da[H + j]) * activate_grad(o->recurrent_activation, f);
            dv[j] = dip, dv[H + j] = dfp, dv[3 * H + j] = dop;
            dv[2 * H + j] = dct * i * activate_grad(o->activation, g);
            u.dstate[1][j] = dct * f + dip * P[j] + dfp * P[H + j];
            u.dh_prev[j] = S(0);
            if (u.daux[kPeephole]) {
                u.daux[kPeephole][j] += dip * cp;
                u.daux[kPeephole][H + j] += dfp * cp;
                u.daux[kPeephole][2 * H + j] += dop * c;
            }
        }
        for (int j = 0; j < G; ++j) u.dx_proj[j] = u.drec[j] = u.dbR[j] = dv[j];
        S* dvg = u.scratch;  // dv rows i, f, o
        for (int r = 0; r < H3; ++r) dvg[r] = dv[r < 2 * H ? r : r + H];
        for (int k = 0; k < H3; ++k) da[k] = S(0);
        for (int r = 0; r < H3; ++r) {
            const S d = dvg[r];
            const S* w = Wg + std::size_t(r) * H3;
            S* dw = u.daux[kGateWeights] + std::size_t(r) * H3;
            for (int k = 0; k < H3; ++k) {
                da[k] += d * w[k];
                dw[k] += d * ap[k];
            }
        }
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
