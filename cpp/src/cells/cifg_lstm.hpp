// LSTM with a coupled input and forget gate (CIFG, Greff et al. 2016; ONNX input_forget): i = 1 - f.
// Gates f g o; saved per unit: f, z = tanh(g), o.
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct CifgLstmCell {
    static constexpr CellTraits traits{3, 3, 2, Recurrence::Dense, false, false, false, 0};

    // f = σ(g_f)   z = tanh(g_g)   c = f c_prev + (1 - f) z   o = σ(g_o)   h = o tanh(c)
    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const int H = u.H;
        S* g = u.gates;
        const S f = sigmoid(g[j]), z = tanh_(g[H + j]), o = sigmoid(g[2 * H + j]);
        const S c = f * u.prev[1][j] + (S(1) - f) * z;
        const S h = o * tanh_(c);
        g[j] = f;
        g[H + j] = z;
        g[2 * H + j] = o;
        u.next[1][j] = c;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dh_t = dh + dy;  do' = dh_t tanh(c) o(1-o);  dc_t = dc + dh_t o (1 - tanh²c)
    // df' = dc_t (c_prev - z) f(1-f);  dz' = dc_t (1 - f)(1 - z²);  dc_prev = dc_t f
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const int H = u.H;
        const S f = u.gates[j], z = u.gates[H + j], o = u.gates[2 * H + j];
        const S tc = tanh_(u.next[1][j]);
        const S dht = u.dh[j] + u.dy[j];
        const S dct = u.dstate[1][j] + dht * o * (S(1) - tc * tc);
        u.dgates[j] = dct * (u.prev[1][j] - z) * f * (S(1) - f);
        u.dgates[H + j] = dct * (S(1) - f) * (S(1) - z * z);
        u.dgates[2 * H + j] = dht * tc * o * (S(1) - o);
        u.dstate[1][j] = dct * f;
        u.dh_prev[j] = S(0);
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
