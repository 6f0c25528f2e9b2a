// The CPU sequence driver of the mLSTM (cells/mlstm.hpp). Every gate reads the input only, so one product
// gives the projections of all T*B rows; the heads of the batch rows are then independent problems, which
// threads share (dynamic schedule). Per problem:
//   inference: the recurrent form, step by step (C, n, m carried: what streaming needs)
//   training:  the chunkwise-parallel form: chunks of kMlstmChunk steps; inside a chunk, for its rows r and
//              steps u <= r with F the cumulative log σ(f~) of the chunk,
//                D[r][u] = exp(F[r] - F[u] + i~[u] - m[r]),   S[r][u] = (q[r] . k[u]) D[r][u]
//                w[r]    = exp(F[r] + m_in - m[r])             (the chunk's incoming memory, as seen at r)
//                h~[r]   = (Σ_u S[r][u] v[u] + w[r] C_in^T q[r]) / (max(|Σ_u S[r][u] + w[r] n_in . q[r]|, e^-m[r]) + eps)
//              with m[r] the recurrent stabiliser (a scalar scan), so the numbers are the recurrent form's; the
//              chunk's end memory goes to the next chunk. C, n, m are kept at chunk boundaries only.
//   backward:  chunks last to first, each the exact gradient of the formulas above (through m as well),
//              receiving the gradient w.r.t. its end state and passing on the one w.r.t. its start state;
//              then dx, dW, db as products over all T*B rows.
// Cost per step O(chunk dh + dh²) per head. Rows past a sequence's length are skipped (state unchanged, y = 0).
// Shape legend and gradient rule: see rnnkit/config.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "cells/mlstm.hpp"
#include "cpu/gemm.hpp"
#include "cpu/pointwise.hpp"
#include "cpu/workspace.hpp"
#include "sequence.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace cpu {

// One (batch row, head) of one direction: where its numbers live.
template <class S>
struct MlstmView {
    int H, NH, dh, B, b, hd, n, T;  // n: the row's valid steps
    bool reverse;
    S* pre;                          // [T, B, ld] projections (and, training, h~ and m)
    int ld;
    int time(int r) const { return reverse ? n - 1 - r : r; }  // r-th processed step
    S* row(int r) const { return pre + (std::size_t(time(r)) * B + b) * ld; }
    S* q(int r) const { return row(r) + hd * dh; }
    S* k(int r) const { return row(r) + H + hd * dh; }
    S* v(int r) const { return row(r) + 2 * H + hd * dh; }
    S* o(int r) const { return row(r) + 3 * H + hd * dh; }
    S& ig(int r) const { return row(r)[4 * H + hd]; }
    S& fg(int r) const { return row(r)[4 * H + NH + hd]; }
    S* htilde(int r) const { return row(r) + 6 * H + hd * dh; }
    S& m(int r) const { return row(r)[7 * H + hd]; }
};

// Valid steps of row b: its length (a wavefront chunk past a row's end passes a length <= 0), or T.
inline int mlstm_steps(const int* lengths, int b, int T) { return lengths ? std::max(0, lengths[b]) : T; }

template <class S>
S mlstm_dot(const S* a, const S* b, int n) {
    S s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; ++j) s += a[j] * b[j];
    return s;
}

// The stabiliser recurrence: m = max(lf + m_prev, i~); true where it takes lf + m_prev.
template <class S>
inline bool mlstm_m(S lf, S m_prev, S ir, S& m) {
    const bool from_f = lf + m_prev >= ir;
    m = from_f ? lf + m_prev : ir;
    return from_f;
}

// Per-thread scratch of a chunk: F, lf, i~, m [L]; S row [L]; gradients
template <class S>
struct MlstmScratch {
    std::vector<S> F, lf, ir, m, D, dF, dI, dM, dlf, dq, dk, dv, num, dnum, Cq, dC_in, dn_in;
    std::vector<char> from_f;
    MlstmScratch(int L, int dh)
        : F(L), lf(L), ir(L), m(L), D(std::size_t(L) * L), dF(L), dI(L), dM(L), dlf(L), dq(std::size_t(L) * dh),
          dk(std::size_t(L) * dh), dv(std::size_t(L) * dh), num(dh), dnum(dh), Cq(dh), dC_in(std::size_t(dh) * dh),
          dn_in(dh), from_f(L) {}
};

// The chunk [r0, r0 + L): F, lf, i~, m of its rows from m_in (m already saved when `saved_m`).
template <class S>
void mlstm_chunk_gates(const MlstmView<S>& p, int r0, int L, S m_in, MlstmScratch<S>& w) {
    S F = 0, m_prev = m_in;
    for (int r = 0; r < L; ++r) {
        w.lf[r] = log_sigmoid(p.fg(r0 + r));
        w.ir[r] = p.ig(r0 + r);
        F += w.lf[r];
        w.F[r] = F;
        w.from_f[r] = mlstm_m(w.lf[r], m_prev, w.ir[r], w.m[r]);
        m_prev = w.m[r];
    }
}

// Training forward of one problem: chunks from the initial state (C, n, m at slot 0); writes h~, m, y and the
// state at every chunk boundary (slot c + 1 after chunk c).
template <class S>
void mlstm_problem_forward(const SeqForward<S>& a, const MlstmView<S>& p, MlstmScratch<S>& w) {
    const int dh = p.dh, H = p.H, NH = p.NH, B = p.B;
    const S scale = S(1) / std::sqrt(S(dh));
    const std::size_t CW = std::size_t(NH) * dh * dh;
    auto C_at = [&](int c) { return a.state[1] + (std::size_t(c) * B + p.b) * CW + std::size_t(p.hd) * dh * dh; };
    auto n_at = [&](int c) { return a.state[2] + (std::size_t(c) * B + p.b) * H + std::size_t(p.hd) * dh; };
    auto m_at = [&](int c) -> S& { return a.state[3][(std::size_t(c) * B + p.b) * NH + p.hd]; };
    for (int c = 0, r0 = 0; r0 < p.n; ++c, r0 += kMlstmChunk) {
        const int L = std::min(kMlstmChunk, p.n - r0);
        const S* C = C_at(c);
        const S* nv = n_at(c);
        const S m_in = m_at(c);
        mlstm_chunk_gates(p, r0, L, m_in, w);
        for (int r = 0; r < L; ++r) {
            const S* q = p.q(r0 + r);
            const S wr = exp_(w.F[r] + m_in - w.m[r]);
            for (int j = 0; j < dh; ++j) w.num[j] = 0;
            for (int i = 0; i < dh; ++i) {
                const S qi = wr * q[i];
#pragma omp simd
                for (int j = 0; j < dh; ++j) w.num[j] += qi * C[std::size_t(i) * dh + j];
            }
            S s = wr * mlstm_dot(q, nv, dh);
            for (int u = 0; u <= r; ++u) {
                const S Sru = scale * mlstm_dot(q, p.k(r0 + u), dh) * exp_(w.F[r] - w.F[u] + w.ir[u] - w.m[r]);
                const S* v = p.v(r0 + u);
#pragma omp simd
                for (int j = 0; j < dh; ++j) w.num[j] += Sru * v[j];
                s += Sru;
            }
            const S bound = exp_(-w.m[r]);
            const S den = (std::abs(s) >= bound ? std::abs(s) : bound) + S(kMlstmEps);
            S* ht = p.htilde(r0 + r);
            const S* o = p.o(r0 + r);
            S* y = a.y + (std::size_t(p.time(r0 + r)) * B + p.b) * a.ldy + std::size_t(p.hd) * dh;
            for (int j = 0; j < dh; ++j) {
                ht[j] = w.num[j] / den;
                y[j] = sigmoid(o[j]) * ht[j];
            }
            p.m(r0 + r) = w.m[r];
        }
        // the chunk's end state
        const int E = L - 1;
        const S wE = exp_(w.F[E] + m_in - w.m[E]);
        S* C1 = C_at(c + 1);
        S* n1 = n_at(c + 1);
        for (std::size_t i = 0; i < std::size_t(dh) * dh; ++i) C1[i] = wE * C[i];
        for (int i = 0; i < dh; ++i) n1[i] = wE * nv[i];
        for (int u = 0; u < L; ++u) {
            const S Eu = scale * exp_(w.F[E] - w.F[u] + w.ir[u] - w.m[E]);
            const S* k = p.k(r0 + u);
            const S* v = p.v(r0 + u);
            for (int i = 0; i < dh; ++i) {
                const S ki = Eu * k[i];
                n1[i] += ki;
#pragma omp simd
                for (int j = 0; j < dh; ++j) C1[std::size_t(i) * dh + j] += ki * v[j];
            }
        }
        m_at(c + 1) = w.m[E];
    }
}

// Inference: the recurrent form, step by step, from state0 into state_n.
template <class S>
void mlstm_problem_step(const SeqForward<S>& a, const MlstmView<S>& p, S* C, S* nv, S& m) {
    const int dh = p.dh, B = p.B;
    const S scale = S(1) / std::sqrt(S(dh));
    for (int r = 0; r < p.n; ++r) {
        const S lf = log_sigmoid(p.fg(r)), ir = p.ig(r);
        S m_new;
        mlstm_m(lf, m, ir, m_new);
        const S f = exp_(lf + m - m_new), i = exp_(ir - m_new);
        const S *q = p.q(r), *k = p.k(r), *v = p.v(r), *o = p.o(r);
        for (int x = 0; x < dh; ++x) {
            const S ik = i * scale * k[x];
            nv[x] = f * nv[x] + ik;
            S* Cx = C + std::size_t(x) * dh;
#pragma omp simd
            for (int j = 0; j < dh; ++j) Cx[j] = f * Cx[j] + ik * v[j];
        }
        m = m_new;
        const S s = mlstm_dot(q, nv, dh), bound = exp_(-m);
        const S den = (std::abs(s) >= bound ? std::abs(s) : bound) + S(kMlstmEps);
        S* y = a.y + (std::size_t(p.time(r)) * B + p.b) * a.ldy + std::size_t(p.hd) * dh;
        for (int j = 0; j < dh; ++j) y[j] = 0;
        for (int x = 0; x < dh; ++x) {
            const S qx = q[x];
            const S* Cx = C + std::size_t(x) * dh;
#pragma omp simd
            for (int j = 0; j < dh; ++j) y[j] += qx * Cx[j];
        }
        for (int j = 0; j < dh; ++j) y[j] = sigmoid(o[j]) * y[j] / den;
    }
}

template <class S>
void mlstm_forward(const SeqForward<S>& a) {
    const int T = a.T, B = a.B, I = a.I, H = a.H, NH = a.opt->num_heads, dh = H / NH;
    const int GR = MlstmCell::gate_rows(H, NH);
    const int LD = a.training ? MlstmCell::traits.saved * H : GR;
    const std::size_t CW = std::size_t(NH) * dh * dh;
    Scratch<S> mem;
    S* pre = a.training ? a.gates : mem.take(std::size_t(T) * B * LD);
    project_all(pre, LD, a.x, a.W, a.bW, a.bR, T * B, I, GR);
    // rows past their length output 0
    for (int b = 0; b < B; ++b)
        for (int t = mlstm_steps(a.lengths, b, T); t < T; ++t) zero_row(a.y + (std::size_t(t) * B + b) * a.ldy, H);
    if (a.training) {
        set_state(a.state[1], a.state0[1], int(B * CW));
        set_state(a.state[2], a.state0[2], B * H);
        set_state(a.state[3], a.state0[3], B * NH);
    }
    const int problems = B * NH;
#pragma omp parallel if (problems > 1 && long(T) * H >= 256)
    {
        MlstmScratch<S> w(a.training ? kMlstmChunk : 1, dh);
        std::vector<S> C(a.training ? 0 : CW / NH), nv(a.training ? 0 : dh);
#pragma omp for schedule(dynamic)
        for (int pi = 0; pi < problems; ++pi) {
            const int b = pi / NH, hd = pi % NH;
            const MlstmView<S> p{H, NH, dh, B, b, hd, mlstm_steps(a.lengths, b, T), T, a.reverse, pre, LD};
            if (a.training) {
                mlstm_problem_forward(a, p, w);
                const int fin = (p.n + kMlstmChunk - 1) / kMlstmChunk;
                const std::size_t c0 = std::size_t(b) * CW + std::size_t(hd) * dh * dh;
                if (a.state_n[1]) copy_row(a.state_n[1] + c0, a.state[1] + std::size_t(fin) * B * CW + c0, dh * dh);
                if (a.state_n[2])
                    copy_row(a.state_n[2] + std::size_t(b) * H + hd * dh,
                             a.state[2] + (std::size_t(fin) * B + b) * H + hd * dh, dh);
                if (a.state_n[3]) a.state_n[3][std::size_t(b) * NH + hd] = a.state[3][(std::size_t(fin) * B + b) * NH + hd];
            } else {
                const std::size_t c0 = std::size_t(b) * CW + std::size_t(hd) * dh * dh;
                set_state(C.data(), a.state0[1] ? a.state0[1] + c0 : nullptr, dh * dh);
                set_state(nv.data(), a.state0[2] ? a.state0[2] + std::size_t(b) * H + hd * dh : nullptr, dh);
                S m = a.state0[3] ? a.state0[3][std::size_t(b) * NH + hd] : S(0);
                mlstm_problem_step(a, p, C.data(), nv.data(), m);
                if (a.state_n[1]) copy_row(a.state_n[1] + c0, C.data(), dh * dh);
                if (a.state_n[2]) copy_row(a.state_n[2] + std::size_t(b) * H + hd * dh, nv.data(), dh);
                if (a.state_n[3]) a.state_n[3][std::size_t(b) * NH + hd] = m;
            }
        }
    }
    if (a.state_n[0])  // h after each row's last step (h0, or zeros, where a row has none)
        for (int b = 0; b < B; ++b) {
            const int n = mlstm_steps(a.lengths, b, T);
            S* hn = a.state_n[0] + std::size_t(b) * H;
            if (n == 0) set_state(hn, a.state0[0] ? a.state0[0] + std::size_t(b) * H : nullptr, H);
            else copy_row(hn, a.y + (std::size_t(a.reverse ? 0 : n - 1) * B + b) * a.ldy, H);
        }
}

// Backward of one problem's chunks, last to first. dC [dh, dh], dn [dh], dm carry the gradient w.r.t. the state
// after the chunk being processed (in: w.r.t. the final state; out: w.r.t. the initial state).
template <class S>
void mlstm_problem_backward(const SeqBackward<S>& a, const MlstmView<S>& p, S* dgates, S* dC, S* dn, S& dm,
                            const S* dh_n, MlstmScratch<S>& w) {
    const int dh = p.dh, H = p.H, NH = p.NH, B = p.B, GR = MlstmCell::gate_rows(H, NH);
    const S scale = S(1) / std::sqrt(S(dh));
    const std::size_t CW = std::size_t(NH) * dh * dh;
    const int chunks = (p.n + kMlstmChunk - 1) / kMlstmChunk;
    for (int c = chunks - 1; c >= 0; --c) {
        const int r0 = c * kMlstmChunk, L = std::min(kMlstmChunk, p.n - r0), E = L - 1;
        const S* C = a.state[1] + (std::size_t(c) * B + p.b) * CW + std::size_t(p.hd) * dh * dh;
        const S* nv = a.state[2] + (std::size_t(c) * B + p.b) * H + std::size_t(p.hd) * dh;
        const S m_in = a.state[3][(std::size_t(c) * B + p.b) * NH + p.hd];
        mlstm_chunk_gates(p, r0, L, m_in, w);
        std::fill(w.dF.begin(), w.dF.end(), S(0));
        std::fill(w.dI.begin(), w.dI.end(), S(0));
        std::fill(w.dM.begin(), w.dM.end(), S(0));
        std::fill(w.dlf.begin(), w.dlf.end(), S(0));
        std::fill(w.dq.begin(), w.dq.end(), S(0));
        std::fill(w.dk.begin(), w.dk.end(), S(0));
        std::fill(w.dv.begin(), w.dv.end(), S(0));
        std::fill(w.dC_in.begin(), w.dC_in.end(), S(0));
        std::fill(w.dn_in.begin(), w.dn_in.end(), S(0));
        S dm_in = 0;
        for (int r = 0; r < L; ++r) {
            const int t = p.time(r0 + r);
            const S* q = p.q(r0 + r);
            const S* o = p.o(r0 + r);
            const S* ht = p.htilde(r0 + r);
            S* dg = dgates + (std::size_t(t) * B + p.b) * GR;
            const S* dy = a.dy + (std::size_t(t) * B + p.b) * a.ldy + std::size_t(p.hd) * dh;
            const bool last = r0 + r == p.n - 1;  // h_n is this step's h
            // recompute the row: w, s, den and S[r][u] (kept in D)
            const S wr = exp_(w.F[r] + m_in - w.m[r]);
            S s = wr * mlstm_dot(q, nv, dh);
            for (int u = 0; u <= r; ++u) {
                const S Dru = exp_(w.F[r] - w.F[u] + w.ir[u] - w.m[r]);
                w.D[std::size_t(r) * L + u] = Dru;
                s += scale * mlstm_dot(q, p.k(r0 + u), dh) * Dru;
            }
            const S bound = exp_(-w.m[r]);
            const bool by_s = std::abs(s) >= bound;
            const S den = (by_s ? std::abs(s) : bound) + S(kMlstmEps);
            S dden = 0;
            for (int j = 0; j < dh; ++j) {
                const S dyj = dy[j] + (last && dh_n ? dh_n[j] : S(0));
                const S og = sigmoid(o[j]);
                const S dht = dyj * og;
                dg[3 * H + p.hd * dh + j] = dyj * ht[j] * og * (S(1) - og);
                w.dnum[j] = dht / den;
                dden -= dht * ht[j] / den;
            }
            const S ds = by_s ? (s >= 0 ? dden : -dden) : S(0);
            if (!by_s) w.dM[r] -= bound * dden;
            // the incoming memory's term
            S* dqr = w.dq.data() + std::size_t(r) * dh;
            for (int i = 0; i < dh; ++i) w.Cq[i] = 0;
            S dw = ds * mlstm_dot(q, nv, dh);
            for (int i = 0; i < dh; ++i) {
                const S* Ci = C + std::size_t(i) * dh;
                const S cd = mlstm_dot(Ci, w.dnum.data(), dh);  // (C dnum)_i
                dw += q[i] * cd;                                 // dnum . (C^T q)
                dqr[i] += wr * (cd + ds * nv[i]);
                const S wq = wr * q[i];
#pragma omp simd
                for (int j = 0; j < dh; ++j) w.dC_in[std::size_t(i) * dh + j] += wq * w.dnum[j];
                w.dn_in[i] += wq * ds;
            }
            const S dlogw = dw * wr;
            w.dF[r] += dlogw;
            dm_in += dlogw;
            w.dM[r] -= dlogw;
            for (int u = 0; u <= r; ++u) {
                const S* k = p.k(r0 + u);
                const S* v = p.v(r0 + u);
                const S Dru = w.D[std::size_t(r) * L + u];
                const S P = scale * mlstm_dot(q, k, dh);
                const S Sru = P * Dru;
                const S dS = mlstm_dot(w.dnum.data(), v, dh) + ds;
                S* dvu = w.dv.data() + std::size_t(u) * dh;
                S* dku = w.dk.data() + std::size_t(u) * dh;
                const S dP = dS * Dru * scale, dlogD = dS * Sru;
#pragma omp simd
                for (int j = 0; j < dh; ++j) {
                    dvu[j] += Sru * w.dnum[j];
                    dqr[j] += dP * k[j];
                    dku[j] += dP * q[j];
                }
                w.dF[r] += dlogD;
                w.dF[u] -= dlogD;
                w.dI[u] += dlogD;
                w.dM[r] -= dlogD;
            }
        }
        // the chunk's end state: C_out = wE C_in + Σ_u E_u k_u v_u^T (k scaled), n_out likewise, m_out = m[E]
        for (int u = 0; u < L; ++u) {
            const S* k = p.k(r0 + u);
            const S* v = p.v(r0 + u);
            const S Eu = exp_(w.F[E] - w.F[u] + w.ir[u] - w.m[E]);
            S* dku = w.dk.data() + std::size_t(u) * dh;
            S* dvu = w.dv.data() + std::size_t(u) * dh;
            S t = 0;
            for (int i = 0; i < dh; ++i) {
                const S* dCi = dC + std::size_t(i) * dh;
                const S dCv = mlstm_dot(dCi, v, dh) + dn[i];  // (dC v + dn)_i
                t += scale * k[i] * dCv;
                dku[i] += scale * Eu * dCv;
                const S ek = Eu * scale * k[i];
#pragma omp simd
                for (int j = 0; j < dh; ++j) dvu[j] += ek * dCi[j];
            }
            const S dlogE = Eu * t;
            w.dF[E] += dlogE;
            w.dF[u] -= dlogE;
            w.dI[u] += dlogE;
            w.dM[E] -= dlogE;
        }
        const S wE = exp_(w.F[E] + m_in - w.m[E]);
        const S dlogwE = wE * (mlstm_dot(dC, C, dh * dh) + mlstm_dot(dn, nv, dh));
        w.dF[E] += dlogwE;
        dm_in += dlogwE;
        w.dM[E] -= dlogwE;
        for (int i = 0; i < dh * dh; ++i) w.dC_in[i] += wE * dC[i];
        for (int i = 0; i < dh; ++i) w.dn_in[i] += wE * dn[i];
        w.dM[E] += dm;
        // through the stabiliser recurrence, then F = cumulative lf
        S g = 0;
        for (int r = E; r >= 0; --r) {
            g += w.dM[r];
            if (w.from_f[r]) {
                w.dlf[r] += g;
            } else {
                w.dI[r] += g;
                g = 0;
            }
        }
        dm_in += g;
        S suffix = 0;
        for (int r = E; r >= 0; --r) {
            suffix += w.dF[r];
            w.dlf[r] += suffix;
        }
        for (int r = 0; r < L; ++r) {
            const int t = p.time(r0 + r);
            S* dg = dgates + (std::size_t(t) * B + p.b) * GR;
            for (int j = 0; j < dh; ++j) {
                dg[p.hd * dh + j] = w.dq[std::size_t(r) * dh + j];
                dg[H + p.hd * dh + j] = w.dk[std::size_t(r) * dh + j];
                dg[2 * H + p.hd * dh + j] = w.dv[std::size_t(r) * dh + j];
            }
            dg[4 * H + p.hd] = w.dI[r];
            dg[4 * H + NH + p.hd] = w.dlf[r] * sigmoid(-p.fg(r0 + r));
        }
        copy_row(dC, w.dC_in.data(), dh * dh);
        copy_row(dn, w.dn_in.data(), dh);
        dm = dm_in;
    }
}

template <class S>
void mlstm_backward(const SeqBackward<S>& a) {
    const int T = a.T, B = a.B, H = a.H, NH = a.opt->num_heads, dh = H / NH, TB = T * B;
    const int GR = MlstmCell::gate_rows(H, NH), LD = MlstmCell::traits.saved * H;
    const std::size_t CW = std::size_t(NH) * dh * dh;
    Scratch<S> mem;
    S* dgates = mem.take(std::size_t(TB) * GR);
    zero_row(dgates, TB * GR);
    S* pre = const_cast<S*>(a.gates);  // read only (MlstmView takes a mutable pointer)
    const int problems = B * NH;
#pragma omp parallel if (problems > 1 && long(T) * H >= 256)
    {
        MlstmScratch<S> w(kMlstmChunk, dh);
        std::vector<S> dC(std::size_t(dh) * dh), dn(dh);
#pragma omp for schedule(dynamic)
        for (int pi = 0; pi < problems; ++pi) {
            const int b = pi / NH, hd = pi % NH;
            const MlstmView<S> p{H, NH, dh, B, b, hd, mlstm_steps(a.lengths, b, T), T, a.reverse, pre, LD};
            const std::size_t c0 = std::size_t(b) * CW + std::size_t(hd) * dh * dh;
            set_state(dC.data(), a.dstate_n[1] ? a.dstate_n[1] + c0 : nullptr, dh * dh);
            set_state(dn.data(), a.dstate_n[2] ? a.dstate_n[2] + std::size_t(b) * H + hd * dh : nullptr, dh);
            S dm = a.dstate_n[3] ? a.dstate_n[3][std::size_t(b) * NH + hd] : S(0);
            const S* dh_n = a.dstate_n[0] ? a.dstate_n[0] + std::size_t(b) * H + hd * dh : nullptr;
            mlstm_problem_backward(a, p, dgates, dC.data(), dn.data(), dm, dh_n, w);
            if (a.dstate0[1]) copy_row(a.dstate0[1] + c0, dC.data(), dh * dh);
            if (a.dstate0[2]) copy_row(a.dstate0[2] + std::size_t(b) * H + hd * dh, dn.data(), dh);
            if (a.dstate0[3]) a.dstate0[3][std::size_t(b) * NH + hd] = dm;
        }
    }
    if (a.dstate0[0])  // h0 reaches the output only through a row without steps
        for (int b = 0; b < B; ++b) {
            S* d = a.dstate0[0] + std::size_t(b) * H;
            if (mlstm_steps(a.lengths, b, T) == 0 && a.dstate_n[0]) copy_row(d, a.dstate_n[0] + std::size_t(b) * H, H);
            else zero_row(d, H);
        }
    input_weight_grads(a, dgates, GR, GR);
}

}  // namespace cpu
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
