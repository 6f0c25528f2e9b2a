// GRU (Cho et al. 2014) in both conventions, gates r z n (torch order):
//   linear_before_reset = true  (PyTorch / cuDNN):  n = tanh(W_n x + b_in + r * (R_n h + b_hn))
//   linear_before_reset = false (Cho et al. 2014):  n = tanh(W_n x + b_in + R_n (r * h) + b_hn)
// with r = σ(W_r x + b_ir + R_r h + b_hr), z = σ(W_z x + b_iz + R_z h + b_hz), h' = (1 - z) n + z h.
// Saved per unit: r, z, n and q = R_n h + b_hn (linear_before_reset) or q = r * h (not).
// The recurrent product stays apart from the projection (r multiplies its candidate part); without
// linear_before_reset the candidate's product R_n (r * h) runs mid-step, once every unit's r is known.
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// Acts: FixedActs (σ gates, tanh candidate) or RuntimeActs (the layer's recurrent_activation and activation).
template <bool LinearBeforeReset, class Acts = FixedActs>
struct GruCell {
    static constexpr CellTraits traits{3, 4, 1, Recurrence::Dense, true, !LinearBeforeReset, false, 0};

    // r = σ(g_r + rec_r + b_hr);  z = σ(g_z + rec_z + b_hz);  q = rec_n + b_hn  or  r * h_rec
    template <class S>
    static RNNKIT_HD void forward_gates(const UnitsForward<S>& u, int j) {
        const int H = u.H;
        S* g = u.gates;
        const S r = Acts::gate(u.opt, g[j] + u.rec[j] + u.bias_hh[j]);
        g[j] = r;
        g[H + j] = Acts::gate(u.opt, g[H + j] + u.rec[H + j] + u.bias_hh[H + j]);
        g[3 * H + j] = LinearBeforeReset ? u.rec[2 * H + j] + u.bias_hh[2 * H + j] : r * u.h_rec[j];
    }

    // n = tanh(g_n + r q)  or  tanh(g_n + rec_n + b_hn)  (rec_n = R_n (r h_rec), the mid-step product);
    // h = (1 - z) n + z h_prev
    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const int H = u.H;
        S* g = u.gates;
        const S r = g[j], z = g[H + j];
        const S hidden_n = LinearBeforeReset ? r * g[3 * H + j] : u.rec[2 * H + j] + u.bias_hh[2 * H + j];
        const S n = Acts::cand(u.opt, g[2 * H + j] + hidden_n);
        const S h = (S(1) - z) * n + z * u.prev[0][j];
        g[2 * H + j] = n;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dh_t = dh + dy;  dn' = dh_t (1-z)(1-n²);  dz' = dh_t (h_prev - n) z(1-z);  dh_prev = dh_t z + ...
    // linear_before_reset: dq = dn' r, dr' = dn' q r(1-r);  else dq = dn' (dr' follows in backward_mid)
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const int H = u.H;
        const S* g = u.gates;
        S* dg = u.dgates;
        const S r = g[j], z = g[H + j], n = g[2 * H + j], q = g[3 * H + j];
        const S dht = u.dh[j] + u.dy[j];
        const S dnp = dht * (S(1) - z) * Acts::dcand(u.opt, n);
        dg[H + j] = dht * (u.prev[0][j] - n) * Acts::dgate(u.opt, z);
        dg[2 * H + j] = dnp;
        if (LinearBeforeReset) {
            dg[j] = dnp * q * Acts::dgate(u.opt, r);
            dg[3 * H + j] = dnp * r;
        } else {
            dg[3 * H + j] = dnp;
        }
        u.dh_prev[j] = dht * z;
    }

    // Without linear_before_reset, after d(r h_rec) = dq R_n (dmid):  dr' = d(r h_rec) h_rec r(1-r);
    // d(h_rec) += d(r h_rec) r
    template <class S>
    static RNNKIT_HD void backward_mid(const UnitsBackward<S>& u, int j) {
        const S r = u.gates[j];
        const S h_rec = u.hmask ? u.prev[0][j] * u.hmask[j] : u.prev[0][j];
        u.dgates[j] = u.dmid[j] * h_rec * Acts::dgate(u.opt, r);
        u.drec[j] = (u.masked ? S(0) : u.drec[j]) + u.dmid[j] * r;
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
