// Attention scores, masked softmax and context: forward/backward pairs. See rnnkit/attention.hpp for the math.
#include "rnnkit/attention.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

#include "cells/activations.hpp"
#include "cpu/gemm.hpp"
#include "cpu/team.hpp"
#include "random.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::gemm;
using detail::mix;
using detail::uniform01;

const char* to_string(AttentionKind kind) {
    switch (kind) {
        case AttentionKind::Bahdanau: return "bahdanau";
        case AttentionKind::LuongDot: return "luong_dot";
        case AttentionKind::LuongGeneral: return "luong_general";
        case AttentionKind::LuongConcat: return "luong_concat";
    }
    return "?";
}

AttentionKind parse_attention(const std::string& name) {
    for (AttentionKind k : {AttentionKind::Bahdanau, AttentionKind::LuongDot, AttentionKind::LuongGeneral,
                            AttentionKind::LuongConcat})
        if (name == to_string(k)) return k;
    throw std::invalid_argument("attention: expected 'bahdanau', 'luong_dot', 'luong_general' or 'luong_concat', got '" +
                                name + "'");
}

template <class S>
Attention<S>::Attention(AttentionKind kind, int query_size, int key_size, int units, std::uint64_t seed)
    : kind_(kind), Q_(query_size), K_(key_size), U_(0), P_(0) {
    if (query_size < 1) throw std::invalid_argument("query_size: expected a positive integer, got " + std::to_string(query_size));
    if (key_size < 1) throw std::invalid_argument("key_size: expected a positive integer, got " + std::to_string(key_size));
    if (units < 0) throw std::invalid_argument("units: expected a positive integer or 0 (query_size), got " + std::to_string(units));
    std::size_t n = 0;
    auto add = [&](const std::string& name, std::vector<std::int64_t> shape) {
        ParamInfo p;
        p.name = name;
        p.shape = shape;
        p.offset = n;
        p.size = 1;
        for (auto s : shape) p.size *= std::size_t(s);
        n += p.size;
        layout_.push_back(p);
        return p.offset + 1;
    };
    switch (kind) {
        case AttentionKind::Bahdanau:
            U_ = P_ = units ? units : Q_;
            wq_ = add("weight_query", {U_, Q_});
            wk_ = add("weight_key", {U_, K_});
            b_ = add("bias", {U_});
            v_ = add("weight_score", {U_});
            break;
        case AttentionKind::LuongConcat:
            U_ = P_ = units ? units : Q_;
            wq_ = add("weight", {U_, Q_ + K_});
            wk_ = wq_ + std::size_t(Q_);  // the key columns of the same matrix
            v_ = add("weight_score", {U_});
            break;
        case AttentionKind::LuongGeneral:
            P_ = Q_;
            wk_ = add("weight", {Q_, K_});
            break;
        case AttentionKind::LuongDot:
            if (Q_ != K_)
                throw std::invalid_argument("luong_dot attention scores q . k: query_size (" + std::to_string(Q_) +
                                            ") must equal key_size (" + std::to_string(K_) + ")");
            break;
    }
    params_.assign(n, S(0));
    grads_.assign(n, S(0));
    reset_parameters(seed);
}

template <class S>
void Attention<S>::zero_grad() {
    std::fill(grads_.begin(), grads_.end(), S(0));
}

template <class S>
void Attention<S>::reset_parameters(std::uint64_t seed) {
    std::mt19937_64 engine(mix(seed, 0x5a77));
    for (const ParamInfo& p : layout_) {
        const double fan_in = p.name == "bias" ? K_ : double(p.shape.back());
        const double k = 1.0 / std::sqrt(fan_in);
        for (std::size_t j = 0; j < p.size; ++j) params_[p.offset + j] = S(-k + 2.0 * k * uniform01(engine));
    }
}

template <class S>
void Attention<S>::prepare(S* proj, const S* keys, int B, int Sn) const {
    const detail::KernelThreads threads;
    const int BS = B * Sn;
    if (P_ == 0 || BS == 0) return;
    if (kind_ == AttentionKind::LuongGeneral) {  // proj_s = W k_s
        gemm<S>(false, true, BS, Q_, K_, S(1), keys, K_, params_.data() + wk_ - 1, K_, S(0), proj, Q_);
        return;
    }
    const int ld = ldwk();  // proj_s = W_k k_s (+ b)
    gemm<S>(false, true, BS, U_, K_, S(1), keys, K_, params_.data() + wk_ - 1, ld, S(0), proj, U_);
    if (b_) {
        const S* b = params_.data() + b_ - 1;
        for (int r = 0; r < BS; ++r)
            for (int u = 0; u < U_; ++u) proj[std::size_t(r) * U_ + u] += b[u];
    }
}

template <class S>
void Attention<S>::prepare_backward(S* dkeys, const S* dproj, const S* keys, int B, int Sn) {
    const detail::KernelThreads threads;
    const int BS = B * Sn;
    if (P_ == 0 || BS == 0) return;
    const int ld = ldwk();
    const S* Wk = params_.data() + wk_ - 1;
    S* dWk = grads_.data() + wk_ - 1;
    // dW_k += dproj^T keys;  dkeys += dproj W_k;  db += Σ_rows dproj
    gemm<S>(true, false, P_, K_, BS, S(1), dproj, P_, keys, K_, S(1), dWk, ld);
    gemm<S>(false, false, BS, K_, P_, S(1), dproj, P_, Wk, ld, S(1), dkeys, K_);
    if (b_) detail::add_column_sums(grads_.data() + b_ - 1, dproj, BS, P_, P_);
}

template <class S>
void Attention<S>::forward(S* context, S* weights, const S* query, const S* keys, const S* proj, const int* lengths,
                           const int* rows, int N, int Sn) const {
    const detail::KernelThreads threads;
    if (N == 0) return;
    std::vector<S> qp;  // additive: the query's part of the score, [N, U]
    if (additive()) {
        qp.resize(std::size_t(N) * U_);
        gemm<S>(false, true, N, U_, Q_, S(1), query, Q_, params_.data() + wq_ - 1, ldwq(), S(0), qp.data(), U_);
    }
    const S* v = v_ ? params_.data() + v_ - 1 : nullptr;
    [[maybe_unused]] const long work = long(N) * Sn * std::max(std::max(U_, K_), 1);
#pragma omp parallel for schedule(static) if (work > 200000)
    for (int n = 0; n < N; ++n) {
        const int b = rows ? rows[n] : n;
        const int len = lengths ? lengths[b] : Sn;
        const S* kb = keys + std::size_t(b) * Sn * K_;
        const S* q = query + std::size_t(n) * Q_;
        S* a = weights + std::size_t(n) * Sn;
        S* c = context + std::size_t(n) * K_;
        S top = -INFINITY;
        for (int s = 0; s < len; ++s) {
            S e = 0;
            if (additive()) {  // e_s = v . tanh(qp + proj_s)
                const S* ps = proj + (std::size_t(b) * Sn + s) * U_;
                const S* qn = qp.data() + std::size_t(n) * U_;
#pragma omp simd reduction(+ : e)
                for (int u = 0; u < U_; ++u) e += v[u] * detail::tanh_(qn[u] + ps[u]);
            } else {  // e_s = q . k_s, or q . (W k_s)
                const S* ks = kind_ == AttentionKind::LuongDot ? kb + std::size_t(s) * K_
                                                               : proj + (std::size_t(b) * Sn + s) * Q_;
                for (int i = 0; i < Q_; ++i) e += q[i] * ks[i];
            }
            a[s] = e;
            top = std::max(top, e);
        }
        S sum = 0;
        for (int s = 0; s < len; ++s) sum += (a[s] = std::exp(a[s] - top));
        for (int s = 0; s < len; ++s) a[s] /= sum;
        for (int s = std::max(len, 0); s < Sn; ++s) a[s] = 0;  // masked: exactly zero
        std::fill(c, c + K_, S(0));
        for (int s = 0; s < len; ++s) {
            const S* ks = kb + std::size_t(s) * K_;
            for (int k = 0; k < K_; ++k) c[k] += a[s] * ks[k];
        }
    }
}

template <class S>
void Attention<S>::backward(S* dquery, S* dkeys, S* dproj, const S* dcontext, const S* dweights, const S* query,
                            const S* weights, const S* keys, const S* proj, const int* lengths, const int* rows, int N,
                            int Sn) {
    const detail::KernelThreads threads;
    if (N == 0) return;
    std::vector<S> qp, G, DV;  // additive: query part [N, U], Σ_s dpre_s [N, U], Σ_s de_s t_s [N, U]
    if (additive()) {
        qp.resize(std::size_t(N) * U_);
        G.assign(std::size_t(N) * U_, S(0));
        DV.assign(std::size_t(N) * U_, S(0));
        gemm<S>(false, true, N, U_, Q_, S(1), query, Q_, params_.data() + wq_ - 1, ldwq(), S(0), qp.data(), U_);
    }
    const S* v = v_ ? params_.data() + v_ - 1 : nullptr;
    [[maybe_unused]] const long work = long(N) * Sn * std::max(std::max(U_, K_), 1);
    // dkeys / dproj rows are shared when several query rows read one source: then the loop runs serially.
#pragma omp parallel for schedule(static) if (rows == nullptr && work > 200000)
    for (int n = 0; n < N; ++n) {
        const int b = rows ? rows[n] : n;
        const int len = lengths ? lengths[b] : Sn;
        const S* kb = keys + std::size_t(b) * Sn * K_;
        const S* q = query + std::size_t(n) * Q_;
        const S* a = weights + std::size_t(n) * Sn;
        const S* dc = dcontext + std::size_t(n) * K_;
        S* dkb = dkeys + std::size_t(b) * Sn * K_;
        std::vector<S> de(std::max(len, 0));
        // da_s = dc . k_s + dweights_s;  de_s = a_s (da_s - Σ_r a_r da_r);  dk_s += a_s dc
        S dot = 0;
        for (int s = 0; s < len; ++s) {
            const S* ks = kb + std::size_t(s) * K_;
            S da = dweights ? dweights[std::size_t(n) * Sn + s] : S(0);
            for (int k = 0; k < K_; ++k) da += dc[k] * ks[k];
            de[s] = da;
            dot += a[s] * da;
        }
        for (int s = 0; s < len; ++s) {
            de[s] = a[s] * (de[s] - dot);
            S* dks = dkb + std::size_t(s) * K_;
            for (int k = 0; k < K_; ++k) dks[k] += a[s] * dc[k];
        }
        if (additive()) {
            // t = tanh(qp + proj_s);  dpre = de_s v (1 - t^2): to dproj_s and (summed over s) to the query part
            const S* qn = qp.data() + std::size_t(n) * U_;
            S* Gn = G.data() + std::size_t(n) * U_;
            S* DVn = DV.data() + std::size_t(n) * U_;
            for (int s = 0; s < len; ++s) {
                const S* ps = proj + (std::size_t(b) * Sn + s) * U_;
                S* dps = dproj + (std::size_t(b) * Sn + s) * U_;
                const S des = de[s];
#pragma omp simd
                for (int u = 0; u < U_; ++u) {
                    const S t = detail::tanh_(qn[u] + ps[u]);
                    const S g = des * v[u] * (S(1) - t * t);
                    Gn[u] += g;
                    DVn[u] += des * t;
                    dps[u] += g;
                }
            }
        } else if (kind_ == AttentionKind::LuongDot) {  // dq = Σ de_s k_s;  dk_s += de_s q
            S* dq = dquery ? dquery + std::size_t(n) * Q_ : nullptr;
            if (dq) std::fill(dq, dq + Q_, S(0));
            for (int s = 0; s < len; ++s) {
                const S* ks = kb + std::size_t(s) * K_;
                S* dks = dkb + std::size_t(s) * K_;
                for (int i = 0; i < Q_; ++i) {
                    if (dq) dq[i] += de[s] * ks[i];
                    dks[i] += de[s] * q[i];
                }
            }
        } else {  // general: dq = Σ de_s proj_s;  dproj_s += de_s q
            S* dq = dquery ? dquery + std::size_t(n) * Q_ : nullptr;
            if (dq) std::fill(dq, dq + Q_, S(0));
            for (int s = 0; s < len; ++s) {
                const S* ps = proj + (std::size_t(b) * Sn + s) * Q_;
                S* dps = dproj + (std::size_t(b) * Sn + s) * Q_;
                for (int i = 0; i < Q_; ++i) {
                    if (dq) dq[i] += de[s] * ps[i];
                    dps[i] += de[s] * q[i];
                }
            }
        }
    }
    if (additive()) {
        // dv += Σ_n DV_n;  dW_q += G^T query;  dquery = G W_q
        detail::add_column_sums(grads_.data() + v_ - 1, DV.data(), N, U_, U_);
        gemm<S>(true, false, U_, Q_, N, S(1), G.data(), U_, query, Q_, S(1), grads_.data() + wq_ - 1, ldwq());
        if (dquery) gemm<S>(false, false, N, Q_, U_, S(1), G.data(), U_, params_.data() + wq_ - 1, ldwq(), S(0), dquery, Q_);
    }
}

template class Attention<float>;
template class Attention<double>;

}  // namespace v0
}  // namespace rnnkit
