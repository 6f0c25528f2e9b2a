// WeightOperand: packed and in-place weight operands split over a thread team (see packed_matrix.hpp); the
// register-tile kernels they run are in microkernels.hpp.
#include "cpu/packed_matrix.hpp"

#include "cpu/gemm.hpp"
#include "cpu/microkernels.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>


namespace rnnkit {
inline namespace v0 {
namespace detail {

using namespace microkernels;


template <class S>
WeightOperand<S> WeightOperand<S>::direct(const S* W, int ldw, int K, int N, Scratch<S>& scratch, bool pack,
                                          bool deferred) {
    constexpr int P = panel_width<S>();
    WeightOperand op;
    op.mode_ = Mode::Panels;
    op.base_ = W;
    op.panel_stride_ = P;
    op.row_stride_ = std::size_t(ldw);
    op.K_ = K;
    op.N_ = N;
    op.gate_width_ = N;
    op.panels_per_gate_ = op.panels_ = (N + P - 1) / P;
    if (pack) {  // panel p: data[(p*K + k)*P + c] = W[k, p*P + c], the ragged last panel zero-padded
        op.packed_ = scratch.take(std::size_t(op.panels_) * K * P);
        op.base_ = op.packed_;
        op.panel_stride_ = std::size_t(K) * P;
        op.row_stride_ = P;
        op.source_ = W;
        op.source_ld_ = std::size_t(ldw);
        op.source_transposed_ = false;
        op.deferred_ = deferred;
        if (!deferred) {
#pragma omp parallel for schedule(static) if (long(K) * N >= (1L << 16))
            for (int p = 0; p < op.panels_; ++p) op.fill_panel(p);
        }
        return op;
    }
    const int ragged = N % P;
    if (ragged) {  // reading P columns of the last panel in place would run past the matrix: pad a copy
        op.packed_ = scratch.take(std::size_t(K) * P);
        std::fill(op.packed_, op.packed_ + std::size_t(K) * P, S(0));
        const int n0 = N - ragged;
        for (int k = 0; k < K; ++k)
            for (int c = 0; c < ragged; ++c) op.packed_[std::size_t(k) * P + c] = W[std::size_t(k) * ldw + n0 + c];
    }
    return op;
}

template <class S>
WeightOperand<S> WeightOperand<S>::transposed(const S* stored, int ldw, int K, int N, bool pack,
                                               Scratch<S>& scratch, int gate_width, bool deferred) {
    constexpr int P = panel_width<S>();
    WeightOperand op;
    op.K_ = K;
    op.N_ = N;
    op.gate_width_ = gate_width > 0 ? gate_width : N;
    const int gates = N / op.gate_width_;
    if (!pack) {
        op.mode_ = Mode::Dot;
        op.base_ = stored;
        op.row_stride_ = std::size_t(ldw);
        return op;
    }
    op.mode_ = Mode::Panels;
    op.panels_per_gate_ = (op.gate_width_ + P - 1) / P;
    op.panels_ = gates * op.panels_per_gate_;
    op.panel_stride_ = std::size_t(K) * P;
    op.row_stride_ = P;
    op.packed_ = scratch.take(std::size_t(op.panels_) * K * P);
    op.base_ = op.packed_;
    op.source_ = stored;
    op.source_ld_ = std::size_t(ldw);
    op.source_transposed_ = true;
    op.deferred_ = deferred;
    if (!deferred) {  // parallel over panels; reads follow the stored rows, writes stay inside one panel
#pragma omp parallel for schedule(static) if (long(K) * N >= (1L << 16))
        for (int p = 0; p < op.panels_; ++p) op.fill_panel(p);
    }
    return op;
}

template <class S>
void WeightOperand<S>::fill_panel(int p) const {
    constexpr int P = panel_width<S>();
    const int K = K_;
    const Panel pn = panel(p);
    S* panel = packed_ + std::size_t(p) * K * P;
    if (!source_transposed_) {  // rows of the panel are runs of the source's rows
        for (int k = 0; k < K; ++k) {
            S* out = panel + std::size_t(k) * P;
            std::memcpy(out, source_ + std::size_t(k) * source_ld_ + pn.n0, sizeof(S) * pn.width);
            for (int c = pn.width; c < P; ++c) out[c] = S(0);
        }
        return;
    }
    // Blocks of 128 rows of the panel (128 x P values, in L1) are filled from P short runs of the stored
    // rows: column by column over the whole panel would write each cache line P times from L2.
    constexpr int KB = 128;
    for (int k0 = 0; k0 < K; k0 += KB) {
        const int kn = std::min(KB, K - k0);
        S* out = panel + std::size_t(k0) * P;
        for (int c = 0; c < pn.width; ++c) {
            const S* row = source_ + std::size_t(pn.n0 + c) * source_ld_ + k0;
            for (int k = 0; k < kn; ++k) out[k * P + c] = row[k];
        }
        for (int c = pn.width; c < P; ++c)
            for (int k = 0; k < kn; ++k) out[k * P + c] = S(0);
    }
}

template <class S>
void WeightOperand<S>::pack_units(UnitRange u) const {
    constexpr int P = panel_width<S>();
    if (!deferred_ || u.u0 >= u.u1) return;
    const int gates = N_ / gate_width_, q0 = u.u0 / P, q1 = (u.u1 + P - 1) / P;
    for (int g = 0; g < gates; ++g)
        for (int q = q0; q < q1; ++q) fill_panel(g * panels_per_gate_ + q);
}

template <class S>
typename WeightOperand<S>::Panel WeightOperand<S>::panel(int p) const {
    constexpr int P = panel_width<S>();
    const int g = p / panels_per_gate_, q = p % panels_per_gate_;
    Panel pn{base_ + std::size_t(p) * panel_stride_, row_stride_, g * gate_width_ + q * P,
             std::min(P, gate_width_ - q * P)};
    const bool direct_tail = packed_ != nullptr && base_ != packed_ && p == panels_ - 1;
    if (direct_tail) {  // a direct operand's ragged last panel reads the padded copy
        pn.data = packed_;
        pn.stride = std::size_t(P);
    }
    return pn;
}

template <class S>
void WeightOperand<S>::block(S* C, int ldc, const S* A, int lda, int m0, int mn, int k0, int kn, int p0, int p1,
                             bool accumulate, bool transposed_a) const {
    for (int p = p0; p < p1; ++p) {
        const Panel pn = panel(p);
        S* c = C + std::size_t(m0) * ldc + pn.n0;
        const S* w = pn.data + std::size_t(k0) * pn.stride;
        if (transposed_a)
            panel_times_rows<S, false, true>(c, ldc, A + std::size_t(k0) * lda + m0, lda, w, pn.stride, kn, mn,
                                             pn.width, accumulate || k0 > 0);
        else
            panel_times_rows(c, ldc, A + std::size_t(m0) * lda + k0, lda, w, pn.stride, kn, mn, pn.width,
                             accumulate || k0 > 0);
    }
}

template <class S>
void WeightOperand<S>::multiply(S* C, int ldc, const S* A, int lda, int M, bool accumulate) const {
    multiply_team(C, ldc, A, lda, M, accumulate, false);
}

template <class S>
void WeightOperand<S>::multiply_transposed(S* C, int ldc, const S* At, int ldat, int M, bool accumulate) const {
    if (mode_ == Mode::Dot) throw std::logic_error("multiply_transposed: needs a panel operand");
    multiply_team(C, ldc, At, ldat, M, accumulate, true);
}

template <class S>
void WeightOperand<S>::multiply_team(S* C, int ldc, const S* A, int lda, int M, bool accumulate,
                                     bool transposed_a) const {
    const int K = K_, N = N_;
    const long work = long(M) * K * N;
    if (mode_ == Mode::Dot) {
        constexpr int CHUNK = 64;  // stored rows per task
        const int chunks = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (work >= (1L << 16) && chunks > 1)
        for (int q = 0; q < chunks; ++q)
            dot_block(C, ldc, A, lda, M, base_, row_stride_, q * CHUNK, std::min(N, q * CHUNK + CHUNK), K,
                      accumulate);
        return;
    }
    // The K slice outermost (see c_blocks_first): here W is mostly a direct operand, whose panel slices are
    // best reused by every block of rows. Threads own fixed panels (static schedule, same count every block),
    // so no two threads write the same columns of C and the blocks need no barriers.
    const int kc = k_block(K), mc = m_block(M);
#pragma omp parallel if (work >= (1L << 16) && panels_ > 1)
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kn = std::min(kc, K - k0);
        for (int m0 = 0; m0 < M; m0 += mc) {
            const int mn = std::min(mc, M - m0);
#pragma omp for schedule(static) nowait
            for (int p = 0; p < panels_; ++p)
                block(C, ldc, A, lda, m0, mn, k0, kn, p, p + 1, accumulate, transposed_a);
        }
    }
}

template <class S>
void WeightOperand<S>::multiply_units(S* C, int ldc, const S* A, int lda, int M, int u0, int u1,
                                      bool accumulate) const {
    constexpr int P = panel_width<S>();
    if (u0 >= u1) return;
    const int gates = N_ / gate_width_;
    if (mode_ == Mode::Dot) {
        for (int g = 0; g < gates; ++g)
            dot_block(C, ldc, A, lda, M, base_, row_stride_, g * gate_width_ + u0, g * gate_width_ + u1, K_,
                      accumulate);
        return;
    }
    constexpr int NG = kPanelGroup;
    const int q0 = u0 / P, q1 = (u1 + P - 1) / P;
    const int kc = k_block(K_), mc = m_block(M);
    if (c_blocks_first<S>(mc, K_)) {
        for (int m0 = 0; m0 < M; m0 += mc) {
            const int mn = std::min(mc, M - m0);
            for (int g = 0; g < gates; ++g)
                for (int qg = q0; qg < q1; qg += NG) {
                    const int p0 = g * panels_per_gate_ + qg, p1 = g * panels_per_gate_ + std::min(q1, qg + NG);
                    for (int k0 = 0; k0 < K_; k0 += kc)
                        block(C, ldc, A, lda, m0, mn, k0, std::min(kc, K_ - k0), p0, p1, accumulate, false);
                }
        }
        return;
    }
    for (int k0 = 0; k0 < K_; k0 += kc) {
        const int kn = std::min(kc, K_ - k0);
        for (int m0 = 0; m0 < M; m0 += mc) {
            const int mn = std::min(mc, M - m0);
            for (int g = 0; g < gates; ++g)
                block(C, ldc, A, lda, m0, mn, k0, kn, g * panels_per_gate_ + q0, g * panels_per_gate_ + q1,
                      accumulate, false);
        }
    }
}

template <class S>
void add_transposed_product(S* C, int ldc, const S* At, int ldat, int M, const S* X, int ldx, int K, int N) {
    if (N < 2 * panel_width<S>()) return gemm<S>(true, false, M, N, K, S(1), At, ldat, X, ldx, S(1), C, ldc);
    Scratch<S> mem;
    WeightOperand<S>::direct(X, ldx, K, N, mem, true).multiply_transposed(C, ldc, At, ldat, M, true);
}

template class WeightOperand<float>;
template class WeightOperand<double>;
template void add_transposed_product<float>(float*, int, const float*, int, int, const float*, int, int, int);
template void add_transposed_product<double>(double*, int, const double*, int, int, const double*, int, int, int);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
