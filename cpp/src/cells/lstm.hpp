// LSTM with forget gate (Gers et al. 1999) and optional peepholes (Gers & Schmidhuber 2000; P = 0 without).
// Gates i f g o (torch order); saved per unit: the post-activation i, f, z = g, o.
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct LstmCell {
    static constexpr CellTraits traits{4, 4, 2, Recurrence::Dense, false, false, false, 3};

    // i = σ(g_i + p_i c_prev)   f = σ(g_f + p_f c_prev)   z = tanh(g_g)
    // c = f c_prev + i z        o = σ(g_o + p_o c)        h = o tanh(c)
    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const int H = u.H;
        S* g = u.gates;
        const S* P = u.extra;
        const S cp = u.prev[1][j];
        const S i = sigmoid(g[j] + P[j] * cp);
        const S f = sigmoid(g[H + j] + P[H + j] * cp);
        const S z = tanh_(g[2 * H + j]);
        const S c = f * cp + i * z;
        const S o = sigmoid(g[3 * H + j] + P[2 * H + j] * c);
        const S h = o * tanh_(c);
        g[j] = i;
        g[H + j] = f;
        g[2 * H + j] = z;
        g[3 * H + j] = o;
        u.next[1][j] = c;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dh_t = dh + dy;  do' = dh_t tanh(c) o(1-o);  dc_t = dc + dh_t o (1 - tanh²c) + do' p_o
    // di' = dc_t z i(1-i);  df' = dc_t c_prev f(1-f);  dz' = dc_t i (1-z²)
    // dc_prev = dc_t f + di' p_i + df' p_f;  dh_prev = dgates R (the driver's product)
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const int H = u.H;
        const S* g = u.gates;
        const S* P = u.extra;
        const S i = g[j], f = g[H + j], z = g[2 * H + j], o = g[3 * H + j];
        const S cp = u.prev[1][j];
        const S tc = tanh_(u.next[1][j]);
        const S dht = u.dh[j] + u.dy[j];
        const S dop = dht * tc * o * (S(1) - o);
        const S dct = u.dstate[1][j] + dht * o * (S(1) - tc * tc) + dop * P[2 * H + j];
        const S dip = dct * z * i * (S(1) - i);
        const S dfp = dct * cp * f * (S(1) - f);
        const S dzp = dct * i * (S(1) - z * z);
        u.dstate[1][j] = dct * f + dip * P[j] + dfp * P[H + j];
        u.dgates[j] = dip;
        u.dgates[H + j] = dfp;
        u.dgates[2 * H + j] = dzp;
        u.dgates[3 * H + j] = dop;
        u.dh_prev[j] = S(0);
    }

    // dp_i += di' c_prev;  dp_f += df' c_prev;  dp_o += do' c
    template <class S>
    static RNNKIT_HD void extra_grad(const UnitsBackward<S>& u, int j) {
        const int H = u.H;
        u.dextra[j] += u.dgates[j] * u.prev[1][j];
        u.dextra[H + j] += u.dgates[H + j] * u.prev[1][j];
        u.dextra[2 * H + j] += u.dgates[3 * H + j] * u.next[1][j];
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
