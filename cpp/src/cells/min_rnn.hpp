// minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that read the input only, so a
// layer's step is a linear recurrence h = a h_prev + b whose coefficients are known for every time step at
// once, and training runs it as a parallel scan over time (cpu/scan_driver.hpp).
//   g(x) = x + 1/2 for x >= 0, σ(x) for x < 0     (the paper's positive activation for the candidate)
//   minGRU   z = σ(z~)   h~ = g(h~ pre)                       h = (1 - z) h_prev + z h~       gates z, h
//   minLSTM  f = σ(f~)   i = σ(i~)   h~ = g(h~ pre)
//            f' = f / (f + i),  i' = i / (f + i)              h = f' h_prev + i' h~        gates i, f, h
// f' is computed as σ(log σ(f~) - log σ(i~)), which is the paper's log-space normalisation: it neither
// divides by f + i nor underflows where both gates are tiny. The gate pre-activations (x W^T + b) are what the
// training forward saves; backward recomputes the coefficients from them.
// A cell here provides, for unit j of one (t, b) row of pre-activations p [G]:
//   coeffs(p, H, j, a, b)              the step's h = a h_prev + b
//   coeffs_grad(p, dp, H, j, da, db)   dp (=) from the gradients w.r.t. a and b
#pragma once

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// g(x) and g'(x)
template <class S>
RNNKIT_HD S min_g(S x) {
    return x >= S(0) ? x + S(0.5) : sigmoid(x);
}
template <class S>
RNNKIT_HD S min_g_grad(S x) {
    if (x >= S(0)) return S(1);
    const S s = sigmoid(x);
    return s * (S(1) - s);
}

struct MinGruCell {
    static constexpr CellTraits traits{2, 2, 1, Recurrence::None, false, false, false, 0};

    template <class S>
    static RNNKIT_HD void coeffs(const S* p, int H, int j, S& a, S& b) {
        const S z = sigmoid(p[j]);
        a = S(1) - z;
        b = z * min_g(p[H + j]);
    }
    // a = 1 - z, b = z g:  dz = db g - da;  dz~ = dz z (1 - z);  dh~ = db z g'
    template <class S>
    static RNNKIT_HD void coeffs_grad(const S* p, S* dp, int H, int j, S da, S db) {
        const S z = sigmoid(p[j]), hc = p[H + j];
        dp[j] = (db * min_g(hc) - da) * z * (S(1) - z);
        dp[H + j] = db * z * min_g_grad(hc);
    }
};

struct MinLstmCell {
    static constexpr CellTraits traits{3, 3, 1, Recurrence::None, false, false, false, 0};

    template <class S>
    static RNNKIT_HD void coeffs(const S* p, int H, int j, S& a, S& b) {
        const S fn = sigmoid(log_sigmoid(p[H + j]) - log_sigmoid(p[j]));  // f' = f / (f + i)
        a = fn;
        b = (S(1) - fn) * min_g(p[2 * H + j]);
    }
    // d = log σ(f~) - log σ(i~), f' = σ(d):  dd = (da - db g) f' (1 - f');  df~ = dd σ(-f~);  di~ = -dd σ(-i~)
    template <class S>
    static RNNKIT_HD void coeffs_grad(const S* p, S* dp, int H, int j, S da, S db) {
        const S ir = p[j], fr = p[H + j], hc = p[2 * H + j];
        const S fn = sigmoid(log_sigmoid(fr) - log_sigmoid(ir));
        const S g = min_g(hc);
        const S dd = (da - db * g) * fn * (S(1) - fn);
        dp[j] = -dd * sigmoid(-ir);
        dp[H + j] = dd * sigmoid(-fr);
        dp[2 * H + j] = db * (S(1) - fn) * min_g_grad(hc);
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
