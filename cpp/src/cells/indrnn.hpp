// IndRNN (Li et al. 2018): h = act(W x + b_ih + b_hh + u * h_prev), an elementwise (diagonal) recurrence with
// the recurrent weights u = weight_hh [H]; recurrent_clip c > 0 makes the effective weights clip(u, -c, c)
// (the paper's constraint |u| <= c, as a function: no gradient reaches u where it is clipped).
// Saved per unit: h. The driver hands the diagonal u to the cell as its extra parameter.
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct IndRnnCell {
    static constexpr CellTraits traits{1, 1, 1, Recurrence::Diagonal, false, false, false, 0};

    template <class S>
    static RNNKIT_HD S weight(const CellOptions* o, S u) {
        const S c = S(o->recurrent_clip);
        return c > S(0) ? (u > c ? c : (u < -c ? -c : u)) : u;
    }

    // h = act(g + clip(u) h_rec)
    template <class S>
    static RNNKIT_HD void forward(const UnitsForward<S>& u, int j) {
        const S h = activate(u.opt->activation, u.gates[j] + weight(u.opt, u.extra[j]) * u.h_rec[j]);
        u.gates[j] = h;
        u.next[0][j] = h;
        u.y[j] = h;
    }

    // dg = (dh + dy) act'(h);  dh_prev = dg clip(u) m  (m: the recurrent dropout mask, 1 without)
    template <class S>
    static RNNKIT_HD void backward(const UnitsBackward<S>& u, int j) {
        const S dg = (u.dh[j] + u.dy[j]) * activate_grad(u.opt->activation, u.gates[j]);
        u.dgates[j] = dg;
        u.dh_prev[j] = dg * weight(u.opt, u.extra[j]) * (u.hmask ? u.hmask[j] : S(1));
    }

    // du += dg h_rec where u is not clipped
    template <class S>
    static RNNKIT_HD void extra_grad(const UnitsBackward<S>& u, int j) {
        const S c = S(u.opt->recurrent_clip), w = u.extra[j];
        const bool clipped = c > S(0) && (w > c || w < -c);
        const S h_rec = u.hmask ? u.prev[0][j] * u.hmask[j] : u.prev[0][j];
        u.dextra[j] += clipped ? S(0) : u.dgates[j] * h_rec;
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
