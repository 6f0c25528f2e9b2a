// Simple (Elman) RNN: h = act(W x + b_ih + R h_prev + b_hh). Saved per unit: h.
// Act: TanhAct, ReluAct (torch's two, inline) or RuntimeAct (the layer's activation: any Nonlinearity).
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct TanhAct {
    template <class S> static RNNKIT_HD S act(const CellOptions*, S x) { return tanh_(x); }
    template <class S> static RNNKIT_HD S grad(const CellOptions*, S y) { return S(1) - y * y; }
};
struct ReluAct {
    template <class S> static RNNKIT_HD S act(const CellOptions*, S x) { return relu(x); }
    template <class S> static RNNKIT_HD S grad(const CellOptions*, S y) { return y > S(0) ? S(1) : S(0); }
};
struct RuntimeAct {
    template <class S> static RNNKIT_HD S act(const CellOptions* o, S x) { return activate(o->activation, x); }
    template <class S> static RNNKIT_HD S grad(const CellOptions* o, S y) { return activate_grad(o->activation, y); }
};

template <class Act>
struct RnnCell {
    static constexpr CellTraits traits{1, 1, 1, Recurrence::Dense, false, false, false, 0};

    // h = act(g)
    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const S h = Act::act(u.opt, u.gates[j]);
        u.gates[j] = h;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dg = (dh + dy) act'(g), from h: tanh' = 1 - h², relu' = [h > 0], ...;  dh_prev = dg R (the driver's product)
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        u.dgates[j] = (u.dh[j] + u.dy[j]) * Act::grad(u.opt, u.gates[j]);
        u.dh_prev[j] = S(0);
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
