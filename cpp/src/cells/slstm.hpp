// The sLSTM cell (Beck et al. 2024, xLSTM, section 2.2): exponential input and forget gates with a normaliser
// state n and a stabiliser state m, so the cell state can be rescaled without overflow:
//   i~, f~, z~, o~ = W x + b_ih + R h_prev + b_hh       (gate blocks i f z o; R block-diagonal over heads)
//   m  = max(i~, m_prev + log σ(f~))                     (m = i~ where the unit's memory is empty, n_prev = 0)
//   i  = exp(i~ - m)    f = exp(m_prev + log σ(f~) - m)  (both <= 1: the stabilised exponential gates; f is
//                                                         capped at 1 where m = i~ by an empty memory)
//   c  = f c_prev + i tanh(z~)     n = f n_prev + i      h = σ(o~) c / n
// The stabiliser cancels in h (c and n carry the same factor), so h is the unstabilised cell's; gradients flow
// through m as through every other state (xlstm's vanilla backend does the same). States: h, c, n, m.
// Recurrent weights: weight_hh [4H, dh] holds, for each gate row g*H + u, the dh weights on the h of u's head
// (u / dh): one dense (4 dh, dh) block per head, as xlstm's recurrent_kernel. The CPU driver runs it through
// the dense recurrent product on the expanded matrix (registry.cpp).
#pragma once

#include <cmath>

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct SlstmCell {
    // gates i f z o; saved blocks: i f (the stabilised gates), tanh(z~), σ(o~), σ(-f~), 1 where m = i~ else 0
    static constexpr CellTraits traits{4, 6, 4, Recurrence::BlockDiagonal, false, false, false, 0};

    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const int H = u.H;
        S* g = u.gates;
        const S ir = g[j], fr = g[H + j], zr = g[2 * H + j], orr = g[3 * H + j];
        const S c_prev = u.prev[1][j], n_prev = u.prev[2][j], m_prev = u.prev[3][j];
        const S lf = m_prev + log_sigmoid(fr);
        const bool from_i = n_prev == S(0) || ir >= lf;
        const S m = from_i ? ir : lf;
        const S ig = exp_(ir - m), fg = exp_(lf - m < S(0) ? lf - m : S(0)), z = tanh_(zr), o = sigmoid(orr);
        const S c = fg * c_prev + ig * z, n = fg * n_prev + ig;
        u.next[1][j] = c;
        u.next[2][j] = n;
        u.next[3][j] = m;
        u.y[j] = u.next[0][j] = o * c / n;
        g[j] = ig, g[H + j] = fg, g[2 * H + j] = z, g[3 * H + j] = o;
        g[4 * H + j] = sigmoid(-fr);
        g[5 * H + j] = from_i ? S(1) : S(0);
    }

    // dh = dh + dy;  do = dh c/n;  dc += dh o/n;  dn += -dh o c/n²
    // di = (dc z + dn) i,  df = (dc c_prev + dn n_prev) f,  dz = dc i (1 - z²)
    // dm = dm_next - di - df, routed to i~ (m = i~) or to (m_prev, log σ(f~)) (m = m_prev + log σ(f~))
    // d(log σ(f~)) = df + [lf branch] dm;  df~ = that σ(-f~);  dm_prev = df + [lf branch] dm
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const int H = u.H;
        const S* g = u.gates;
        S* dg = u.dgates;
        const S ig = g[j], fg = g[H + j], z = g[2 * H + j], o = g[3 * H + j], sf = g[4 * H + j];
        const bool from_i = g[5 * H + j] != S(0);
        const S c = u.next[1][j], n = u.next[2][j];
        const S dht = u.dh[j] + u.dy[j];
        const S dc = u.dstate[1][j] + dht * o / n;
        const S dn = u.dstate[2][j] - dht * o * c / (n * n);
        const S dpi = (dc * z + dn) * ig;                             // d i~ through i = exp(i~ - m)
        const S dpf = (dc * u.prev[1][j] + dn * u.prev[2][j]) * fg;  // d lf through f = exp(lf - m)
        const S dm = u.dstate[3][j] - dpi - dpf;
        const S dlf = dpf + (from_i ? S(0) : dm);
        dg[j] = dpi + (from_i ? dm : S(0));
        dg[H + j] = dlf * sf;
        dg[2 * H + j] = dc * ig * (S(1) - z * z);
        dg[3 * H + j] = dht * (c / n) * o * (S(1) - o);
        u.dh_prev[j] = S(0);
        u.dstate[1][j] = dc * fg;
        u.dstate[2][j] = dn * fg;
        u.dstate[3][j] = dlf;
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
