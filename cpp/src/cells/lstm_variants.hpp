// The LSTM with every option of the family (Greff et al. 2016, Keras, ONNX), the cell the "lstm" row runs
// when any option differs from the classic LSTM (cells/lstm.hpp runs the classic one):
//   i = σ_g(clip(g_i + p_i c_prev))  or 1 (input_gate=False)  or 1 - f (coupled_input_forget)
//   f = σ_g(clip(g_f + p_f c_prev))  or 1 (forget_gate=False)
//   z = act_in(clip(g_g))            act_in = activation, or linear (input_activation=False)
//   c = f c_prev + i z
//   o = σ_g(clip(g_o + p_o c))       or 1 (output_gate=False)
//   h = o act_out(c)                 act_out = activation, or linear (output_activation=False)
// σ_g = recurrent_activation; clip(v) = min(max(v, -cell_clip), cell_clip) when cell_clip > 0 (ONNX `clip` as
// onnxruntime applies it: to the inputs of the gate and candidate activations, not to c).
// A removed gate has no rows: the G = gates * H gate rows hold the remaining gates in the order i f g o
// (CellOptions::slot). Saved per unit, in blocks of H: [0, G) the gates' values, [G, 2G) their derivatives
// act'(clip(v)) [|v| <= clip], then act_out(clip(c)), its derivative, and c (before any zoneout).
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct LstmVariantCell {
    static constexpr CellTraits traits{4, 11, 2, Recurrence::Dense, false, false, false, 3};
    static int gate_blocks(const CellOptions& o) { return o.gates; }
    static int saved_blocks(const CellOptions& o) { return 2 * o.gates + 3; }

    // y = act(clip(v)), d = act'(clip(v)) [|v| <= clip]  (clip <= 0: no clipping)
    template <class S>
    static RNNKIT_HD S apply(const Nonlinearity& act, double clip, S v, S& d) {
        const S c = S(clip);
        const bool clipped = c > S(0) && (v > c || v < -c);
        const S y = activate(act, clipped ? (v > S(0) ? c : -c) : v);
        d = clipped ? S(0) : activate_grad(act, y);
        return y;
    }

    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const CellOptions* o = u.opt;
        const int H = u.H, GH = o->gates * H;
        S* g = u.gates;  // [0, G) gate pre-activations -> values; [G, 2G) derivatives; then a, a', c
        S* d = g + GH;
        const S* P = u.extra;
        const S cp = u.prev[1][j];
        const int si = o->slot[0], sf = o->slot[1], sg = o->slot[2], so = o->slot[3];
        S f = S(1), i = S(1), og = S(1);
        if (sf >= 0) g[sf * H + j] = f = apply(o->recurrent_activation, o->clip, g[sf * H + j] + P[H + j] * cp, d[sf * H + j]);
        if (si >= 0) g[si * H + j] = i = apply(o->recurrent_activation, o->clip, g[si * H + j] + P[j] * cp, d[si * H + j]);
        else if (o->coupled) i = S(1) - f;
        const S z = apply(o->input_activation, o->clip, g[sg * H + j], d[sg * H + j]);
        g[sg * H + j] = z;
        const S c = f * cp + i * z;
        if (so >= 0) g[so * H + j] = og = apply(o->recurrent_activation, o->clip, g[so * H + j] + P[2 * H + j] * c, d[so * H + j]);
        S da;
        const S a = apply(o->output_activation, 0.0, c, da);
        d[GH + j] = a;
        d[GH + H + j] = da;
        d[GH + 2 * H + j] = c;
        const S h = og * a;
        u.next[1][j] = c;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dh_t = dh + dy;  do' = dh_t a o';  dc_t = dc + dh_t o a' + do' p_o
    // dz' = dc_t i z';  di = dc_t z;  df = dc_t c_prev (- di when coupled);  di' = di i';  df' = df f'
    // dc_prev = dc_t f + di' p_i + df' p_f
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const CellOptions* o = u.opt;
        const int H = u.H, GH = o->gates * H;
        const S* g = u.gates;
        const S* d = g + GH;
        S* dg = u.dgates;
        const S* P = u.extra;
        const S cp = u.prev[1][j];
        const int si = o->slot[0], sf = o->slot[1], sg = o->slot[2], so = o->slot[3];
        const S f = sf >= 0 ? g[sf * H + j] : S(1);
        const S i = si >= 0 ? g[si * H + j] : (o->coupled ? S(1) - f : S(1));
        const S og = so >= 0 ? g[so * H + j] : S(1);
        const S z = g[sg * H + j], a = d[GH + j], da = d[GH + H + j];
        const S dht = u.dh[j] + u.dy[j];
        const S dop = so >= 0 ? dht * a * d[so * H + j] : S(0);
        const S dct = u.dstate[1][j] + dht * og * da + dop * P[2 * H + j];
        const S di = dct * z;
        const S df = dct * cp - (o->coupled ? di : S(0));
        const S dip = si >= 0 ? di * d[si * H + j] : S(0);
        const S dfp = sf >= 0 ? df * d[sf * H + j] : S(0);
        dg[sg * H + j] = dct * i * d[sg * H + j];
        if (si >= 0) dg[si * H + j] = dip;
        if (sf >= 0) dg[sf * H + j] = dfp;
        if (so >= 0) dg[so * H + j] = dop;
        u.dstate[1][j] = dct * f + dip * P[j] + dfp * P[H + j];
        u.dh_prev[j] = S(0);
    }

    // dp_i += di' c_prev;  dp_f += df' c_prev;  dp_o += do' c  (rows of removed gates get nothing)
    template <class S>
    static RNNKIT_HD void extra_grad(const UnitsBackward<S>& u, int j) {
        const CellOptions* o = u.opt;
        const int H = u.H;
        const int si = o->slot[0], sf = o->slot[1], so = o->slot[3];
        const S cp = u.prev[1][j], c = u.gates[(2 * o->gates + 2) * H + j];
        if (si >= 0) u.dextra[j] += u.dgates[si * H + j] * cp;
        if (sf >= 0) u.dextra[H + j] += u.dgates[sf * H + j] * cp;
        if (so >= 0) u.dextra[2 * H + j] += u.dgates[so * H + j] * c;
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
