// Layer-normalised LSTM and GRU (Ba et al. 2016, in haste's formulation): the input and recurrent products are
// normalised separately over their G = gates * H columns and scaled by gains, the biases added after; the LSTM
// also normalises the cell state before its output activation (gain and bias):
//   LSTM  v = γx ⊙ LN(x W^T) + γh ⊙ LN(h_prev R^T) + b_ih + b_hh    gates i f g o of v as in the LSTM
//         c = f c_prev + i g                                        h = o act(γc ⊙ LN(c) + βc)
//   GRU   ax = γx ⊙ LN(x W^T) + b_ih,  ar = γh ⊙ LN(h_prev R^T) + b_hh   (linear_before_reset: r scales ar_n)
//         r = σ(ax_r + ar_r)   z = σ(ax_z + ar_z)   n = act(ax_n + r ar_n)   h = (1 - z) n + z h_prev
// LN(v) = (v - mean(v)) / sqrt(var(v) + 1e-5) over a row. Every step reduces across all units of a row, so these
// cells run row by row (cpu/row_driver.hpp: threads own batch rows): their functions take a whole row.
// Parameters: weight_ln_ih, weight_ln_hh [G] (γx, γh), and for the LSTM weight_ln_c, bias_ln_c [H] (γc, βc).
// The row interface (RowForward / RowBackward) is shared with the other row cells (cells/full_gate.hpp).
#pragma once

#include <cmath>

#include "cells/cell.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

constexpr double kLayerNormEps = 1e-5;

// out = (v - mean) / sd over n values; returns sd.
template <class S>
inline S normalize(S* out, const S* v, int n) {
    S mean = 0, var = 0;
    for (int j = 0; j < n; ++j) mean += v[j];
    mean /= S(n);
    for (int j = 0; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
    const S sd = S(std::sqrt(double(var / S(n)) + kLayerNormEps));
    for (int j = 0; j < n; ++j) out[j] = (v[j] - mean) / sd;
    return sd;
}

// Given d(normalised) dn and the normalised values xn (sd from normalize): dv = (dn - mean(dn) - xn mean(dn xn)) / sd.
template <class S>
inline void normalize_grad(S* dv, const S* dn, const S* xn, S sd, int n) {
    S m1 = 0, m2 = 0;
    for (int j = 0; j < n; ++j) m1 += dn[j], m2 += dn[j] * xn[j];
    m1 /= S(n);
    m2 /= S(n);
    for (int j = 0; j < n; ++j) dv[j] = (dn[j] - m1 - xn[j] * m2) / sd;
}

// One batch row of one step, as a row cell's forward sees it.
template <class S>
struct RowForward {
    S* saved;                   // [saved*H] in: x W^T in the first G columns; out: what backward needs
    const S* rec;               // [G] h_rec R^T (no bias)
    const S* prev[kMaxStates];  // [H] each: the states before the step
    S* next[kMaxStates];        // [H] each: the states after it
    S* y;                       // [H] the output row
    const S* bW;                // [G] b_ih (zeros without bias)
    const S* bR;                // [G] b_hh (zeros without bias)
    const S* aux[6];            // the cell's parameters besides W, R, biases (see RowAux below)
    const CellOptions* opt;
    int H;
};

// The extra parameters a row cell reads, by index into aux / daux: layer normalisation γx [G], γh [G], γc [H],
// βc [H]; peepholes [3, H] (zeros when the layer has none); full gate recurrence W_gates [3H, 3H].
enum RowAux { kGainX = 0, kGainH, kGainC, kBiasC, kPeephole, kGateWeights, kAuxCount };

// Its gradient (in reverse time order).
template <class S>
struct RowBackward {
    const S* saved;             // [saved*H] what forward saved
    const S* dy;                // [H]
    const S* dh;                // [H] carried from later steps
    S* dh_prev;                 // [H] out (=): the part of d h_prev that does not pass through R
    S* dstate[kMaxStates];      // [H] states 1..: in d state after the step, out d state before it
    const S* prev[kMaxStates];
    const S* next[kMaxStates];
    const S* aux[6];
    S* daux[6];                 // +=: their gradients (nullptr where the parameter does not exist)
    S* dx_proj;                 // [G] out (=): d(x W^T)
    S* drec;                    // [G] out (=): d(h_rec R^T)
    S* dbW;                     // [G] out (=): d b_ih for this row
    S* dbR;                     // [G] out (=): d b_hh for this row
    S* scratch;                 // [2G] work space
    const CellOptions* opt;
    int H;
};

struct LstmLayerNormCell {
    static constexpr CellTraits traits{4, 17, 2, Recurrence::Dense, false, false, true, 0};
    static int state_width(int, int H) { return H; }
    // saved blocks: gate values i f g o [0,4); x̂ [4,8); ĥ (normalised h R^T) [8,12); ĉ 12; a = act(ĉγ+β) 13;
    // the three standard deviations (σx, σh, σc), each repeated over a block, 14..16

    template <class S>
    static void forward_row(const RowForward<S>& u) {
        const CellOptions* o = u.opt;
        const int H = u.H, G = 4 * H;
        S* v = u.saved;
        S *xn = v + G, *hn = v + 2 * G, *cn = v + 3 * G, *a = cn + H, *sd = a + H;
        const S sx = normalize(xn, v, G), sh = normalize(hn, u.rec, G);
        for (int j = 0; j < G; ++j) v[j] = u.aux[kGainX][j] * xn[j] + u.aux[kGainH][j] * hn[j] + u.bW[j] + u.bR[j];
        for (int j = 0; j < H; ++j) {
            v[j] = activate(o->recurrent_activation, v[j]);
            v[H + j] = activate(o->recurrent_activation, v[H + j]);
            v[2 * H + j] = activate(o->activation, v[2 * H + j]);
            v[3 * H + j] = activate(o->recurrent_activation, v[3 * H + j]);
            u.next[1][j] = v[H + j] * u.prev[1][j] + v[j] * v[2 * H + j];
        }
        const S sc = normalize(cn, u.next[1], H);
        for (int j = 0; j < H; ++j) {
            a[j] = activate(o->activation, u.aux[kGainC][j] * cn[j] + u.aux[kBiasC][j]);
            u.y[j] = u.next[0][j] = v[3 * H + j] * a[j];
            sd[j] = sx, sd[H + j] = sh, sd[2 * H + j] = sc;
        }
    }

    template <class S>
    static void backward_row(const RowBackward<S>& u) {
        const CellOptions* o = u.opt;
        const int H = u.H, G = 4 * H;
        const S* v = u.saved;
        const S *xn = v + G, *hn = v + 2 * G, *cn = v + 3 * G, *a = cn + H, *sd = a + H;
        S* dv = u.dbW;     // dv = d(pre-activation gates), also d b_ih and d b_hh
        S* dcn = u.scratch;  // d ĉ [H], then d c from the normalisation
        for (int j = 0; j < H; ++j) {
            const S dht = u.dh[j] + u.dy[j];
            const S og = v[3 * H + j];
            dv[3 * H + j] = dht * a[j] * activate_grad(o->recurrent_activation, og);
            const S dpre = dht * og * activate_grad(o->activation, a[j]);  // d(γc ĉ + βc)
            u.daux[kGainC][j] += dpre * cn[j];
            u.daux[kBiasC][j] += dpre;
            dcn[j] = dpre * u.aux[kGainC][j];
        }
        normalize_grad(dcn, dcn, cn, sd[2 * H], H);
        for (int j = 0; j < H; ++j) {
            const S i = v[j], f = v[H + j], g = v[2 * H + j];
            const S dct = u.dstate[1][j] + dcn[j];
            dv[j] = dct * g * activate_grad(o->recurrent_activation, i);
            dv[H + j] = dct * u.prev[1][j] * activate_grad(o->recurrent_activation, f);
            dv[2 * H + j] = dct * i * activate_grad(o->activation, g);
            u.dstate[1][j] = dct * f;
            u.dh_prev[j] = S(0);
        }
        for (int j = 0; j < G; ++j) {
            u.dbR[j] = dv[j];
            u.daux[kGainX][j] += dv[j] * xn[j];
            u.daux[kGainH][j] += dv[j] * hn[j];
            u.scratch[j] = dv[j] * u.aux[kGainX][j];
            u.scratch[G + j] = dv[j] * u.aux[kGainH][j];
        }
        normalize_grad(u.dx_proj, u.scratch, xn, sd[0], G);
        normalize_grad(u.drec, u.scratch + G, hn, sd[H], G);
    }
};

struct GruLayerNormCell {
    static constexpr CellTraits traits{3, 12, 1, Recurrence::Dense, false, false, true, 0};
    static int state_width(int, int H) { return H; }
    // saved blocks: r z n [0,3); x̂ [3,6); ĥ [6,9); q = ar_n 9; σx 10, σh 11 (repeated over a block)

    template <class S>
    static void forward_row(const RowForward<S>& u) {
        const CellOptions* o = u.opt;
        const int H = u.H, G = 3 * H;
        S* v = u.saved;
        S *xn = v + G, *hn = v + 2 * G, *q = v + 3 * G, *sd = q + H;
        const S sx = normalize(xn, v, G), sh = normalize(hn, u.rec, G);
        for (int j = 0; j < H; ++j) {
            auto ax = [&](int k) { return u.aux[kGainX][k] * xn[k] + u.bW[k]; };
            auto ar = [&](int k) { return u.aux[kGainH][k] * hn[k] + u.bR[k]; };
            const S r = activate(o->recurrent_activation, ax(j) + ar(j));
            const S z = activate(o->recurrent_activation, ax(H + j) + ar(H + j));
            q[j] = ar(2 * H + j);
            const S n = activate(o->activation, ax(2 * H + j) + r * q[j]);
            v[j] = r, v[H + j] = z, v[2 * H + j] = n;
            u.y[j] = u.next[0][j] = (S(1) - z) * n + z * u.prev[0][j];
            sd[j] = sx, sd[H + j] = sh;
        }
    }

    template <class S>
    static void backward_row(const RowBackward<S>& u) {
        const CellOptions* o = u.opt;
        const int H = u.H, G = 3 * H;
        const S* v = u.saved;
        const S *xn = v + G, *hn = v + 2 * G, *q = v + 3 * G, *sd = q + H;
        S *dax = u.dbW, *dar = u.dbR;  // d(ax), d(ar): also the bias gradients
        for (int j = 0; j < H; ++j) {
            const S r = v[j], z = v[H + j], n = v[2 * H + j];
            const S dht = u.dh[j] + u.dy[j];
            const S dnp = dht * (S(1) - z) * activate_grad(o->activation, n);
            const S dzp = dht * (u.prev[0][j] - n) * activate_grad(o->recurrent_activation, z);
            const S drp = dnp * q[j] * activate_grad(o->recurrent_activation, r);
            dax[j] = dar[j] = drp;
            dax[H + j] = dar[H + j] = dzp;
            dax[2 * H + j] = dnp;
            dar[2 * H + j] = dnp * r;
            u.dh_prev[j] = dht * z;
        }
        for (int j = 0; j < G; ++j) {
            u.daux[kGainX][j] += dax[j] * xn[j];
            u.daux[kGainH][j] += dar[j] * hn[j];
            u.scratch[j] = dax[j] * u.aux[kGainX][j];
            u.scratch[G + j] = dar[j] * u.aux[kGainH][j];
        }
        normalize_grad(u.dx_proj, u.scratch, xn, sd[0], G);
        normalize_grad(u.drec, u.scratch + G, hn, sd[H], G);
    }
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
