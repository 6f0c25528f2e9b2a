// Helpers the reference files share: exact activations, states in and out, the recurrent input of a step.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "reference/reference.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace reference {

template <class S> inline S sigm(S v) { return S(1) / (S(1) + std::exp(-v)); }

// slot = init, or zeros
template <class S>
inline void load_state(S* slot, const S* init, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) slot[i] = init ? init[i] : S(0);
}
template <class S>
inline void store_state(S* out, const S* slot, std::size_t n) {
    if (out) std::memcpy(out, slot, sizeof(S) * n);
}

// h_rec[B, H] = h_prev * hmask (or h_prev)
template <class S>
inline void recurrent_input(S* h_rec, const S* h_prev, const S* hmask, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h_rec[i] = hmask ? h_prev[i] * hmask[i] : h_prev[i];
}

// The weight gradients every dense cell shares, from dgates [T, B, ld] (the first G columns):
// dx (+)= dG W;  dW += dG^T x;  db_ih += Σ dG   (dR and db_hh are cell-specific).
template <class S>
inline void input_grads(const SeqBackward<S>& a, const S* dG, int ld, int G) {
    const int TB = a.T * a.B, I = a.I;
    for (int r = 0; r < TB; ++r) {
        const S* dg = dG + std::size_t(r) * ld;
        const S* x = a.x + std::size_t(r) * I;
        S* dx = a.dx + std::size_t(r) * I;
        for (int i = 0; i < I; ++i) {
            S acc = a.dx_accumulate ? dx[i] : S(0);
            for (int g = 0; g < G; ++g) acc += dg[g] * a.W[std::size_t(g) * I + i];
            dx[i] = acc;
        }
        for (int g = 0; g < G; ++g) {
            for (int i = 0; i < I; ++i) a.dW[std::size_t(g) * I + i] += dg[g] * x[i];
            if (a.dbW) a.dbW[g] += dg[g];
        }
    }
}

// Step t's gradient w.r.t. h_prev through R: dh_prev = (dG_t R) * hmask for the rows still running at t, dh
// itself for the rows that ended (their state passed through).   dG_t: [B, G] (row stride ldg); R: [G, H].
template <class S>
inline void recurrent_state_grad(S* dh_prev, const S* dh, const S* dG_t, int ldg, const S* R, int G, int B, int H,
                                 int t, const int* lengths, const S* hmask) {
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < H; ++j) {
            const std::size_t k = std::size_t(b) * H + j;
            if (lengths && t >= lengths[b]) {
                dh_prev[k] = dh[k];
                continue;
            }
            S acc = 0;
            for (int q = 0; q < G; ++q) acc += dG_t[std::size_t(b) * ldg + q] * R[std::size_t(q) * H + j];
            dh_prev[k] = hmask ? acc * hmask[k] : acc;
        }
}

// Step t's recurrent weight gradients for N rows of R: dR[N, H] += dG_t^T X, db[N] += Σ_b dG_t (db may be
// nullptr).   dG_t: [B, N] (row stride ldg); X: [B, H] (row stride ldx), what those rows of R multiplied.
template <class S>
inline void add_recurrent_grads(S* dR, S* db, const S* dG_t, int ldg, const S* X, int ldx, int B, int N, int H) {
    for (int b = 0; b < B; ++b) {
        const S* dg = dG_t + std::size_t(b) * ldg;
        const S* x = X + std::size_t(b) * ldx;
        for (int m = 0; m < N; ++m) {
            for (int j = 0; j < H; ++j) dR[std::size_t(m) * H + j] += dg[m] * x[j];
            if (db) db[m] += dg[m];
        }
    }
}

}  // namespace reference
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
