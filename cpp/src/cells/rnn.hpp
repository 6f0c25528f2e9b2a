// Simple (Elman) RNN: h = act(W x + b_ih + R h_prev + b_hh), act = tanh or relu. Saved per unit: h.
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <bool Relu>
struct RnnCell {
    static constexpr CellTraits traits{1, 1, 1, Recurrence::Dense, false, false, false, 0};

    // h = tanh(g) or max(g, 0)
    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const S h = Relu ? relu(u.gates[j]) : tanh_(u.gates[j]);
        u.gates[j] = h;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dg = (dh + dy) act'(h): tanh' = 1 - h², relu' = [h > 0];  dh_prev = dg R (the driver's product)
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const S h = u.gates[j];
        const S d = Relu ? (h > S(0) ? S(1) : S(0)) : S(1) - h * h;
        u.dgates[j] = (u.dh[j] + u.dy[j]) * d;
        u.dh_prev[j] = S(0);
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
