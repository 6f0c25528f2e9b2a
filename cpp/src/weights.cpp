#include "weights.hpp"

#include <algorithm>
#include <cstddef>

namespace rnnkit {
inline namespace v0 {
namespace detail {

namespace {

// RB rows of A times one panel (K rows of P values, `stride` apart): acc[RB][P] stays in registers.
template <class S, int RB>
inline void panel_kernel(S* C, int ldc, const S* A, int lda, const S* panel, std::size_t stride, int K, int width,
                         bool accumulate) {
    constexpr int P = panel_width<S>();
    S acc[RB][P];
    for (int r = 0; r < RB; ++r)
#pragma omp simd
        for (int c = 0; c < P; ++c) acc[r][c] = S(0);
    for (int k = 0; k < K; ++k) {
        const S* w = panel + std::size_t(k) * stride;
        for (int r = 0; r < RB; ++r) {
            const S a = A[std::size_t(r) * lda + k];
#pragma omp simd
            for (int c = 0; c < P; ++c) acc[r][c] += a * w[c];
        }
    }
    for (int r = 0; r < RB; ++r) {
        S* row = C + std::size_t(r) * ldc;
        for (int c = 0; c < width; ++c) row[c] = accumulate ? row[c] + acc[r][c] : acc[r][c];
    }
}

// One row of A (a matrix-vector product): four partial sums over k hide the FMA latency.
template <class S>
inline void panel_vector_kernel(S* C, const S* A, const S* panel, std::size_t stride, int K, int width,
                                bool accumulate) {
    constexpr int P = panel_width<S>();
    S acc[4][P];
    for (int u = 0; u < 4; ++u)
#pragma omp simd
        for (int c = 0; c < P; ++c) acc[u][c] = S(0);
    int k = 0;
    for (; k + 4 <= K; k += 4)
        for (int u = 0; u < 4; ++u) {
            const S a = A[k + u];
            const S* w = panel + std::size_t(k + u) * stride;
#pragma omp simd
            for (int c = 0; c < P; ++c) acc[u][c] += a * w[c];
        }
    for (; k < K; ++k) {
        const S a = A[k];
        const S* w = panel + std::size_t(k) * stride;
#pragma omp simd
        for (int c = 0; c < P; ++c) acc[0][c] += a * w[c];
    }
    for (int c = 0; c < width; ++c) {
        const S sum = (acc[0][c] + acc[1][c]) + (acc[2][c] + acc[3][c]);
        C[c] = accumulate ? C[c] + sum : sum;
    }
}

template <class S>
inline void panel_times_rows(S* C, int ldc, const S* A, int lda, const S* panel, std::size_t stride, int K, int M,
                             int width, bool accumulate) {
    constexpr int RB = sizeof(S) == 4 ? 8 : 4;
    if (M == 1) return panel_vector_kernel(C, A, panel, stride, K, width, accumulate);
    int r = 0;
    for (; r + RB <= M; r += RB)
        panel_kernel<S, RB>(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, panel, stride, K, width,
                            accumulate);
    for (; r + 2 <= M; r += 2)
        panel_kernel<S, 2>(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, panel, stride, K, width,
                           accumulate);
    for (; r < M; ++r)
        panel_vector_kernel(C + std::size_t(r) * ldc, A + std::size_t(r) * lda, panel, stride, K, width, accumulate);
}

// C[MB, NB] of dot products of rows of A with rows of the stored matrix, vectorised along k.
template <class S, int MB, int NB>
inline void dot_tile(S* C, int ldc, const S* A, int lda, const S* Bs, std::size_t ldb, int K, bool accumulate) {
    constexpr int V = panel_width<S>() / 2;  // one SIMD register of S
    S acc[MB][NB][V];
    for (int i = 0; i < MB; ++i)
        for (int j = 0; j < NB; ++j)
#pragma omp simd
            for (int v = 0; v < V; ++v) acc[i][j][v] = S(0);
    int k = 0;
    for (; k + V <= K; k += V)
        for (int i = 0; i < MB; ++i)
            for (int j = 0; j < NB; ++j) {
                const S* a = A + std::size_t(i) * lda + k;
                const S* b = Bs + std::size_t(j) * ldb + k;
#pragma omp simd
                for (int v = 0; v < V; ++v) acc[i][j][v] += a[v] * b[v];
            }
    for (int i = 0; i < MB; ++i)
        for (int j = 0; j < NB; ++j) {
            S sum = 0;
            for (int v = 0; v < V; ++v) sum += acc[i][j][v];
            for (int kk = k; kk < K; ++kk) sum += A[std::size_t(i) * lda + kk] * Bs[std::size_t(j) * ldb + kk];
            S& c = C[std::size_t(i) * ldc + j];
            c = accumulate ? c + sum : sum;
        }
}

template <class S, int MB>
inline void dot_rows(S* C, int ldc, const S* A, int lda, const S* Bs, std::size_t ldb, int n0, int n1, int K,
                     bool accumulate) {
    int n = n0;
    for (; n + 4 <= n1; n += 4) dot_tile<S, MB, 4>(C + n, ldc, A, lda, Bs + std::size_t(n) * ldb, ldb, K, accumulate);
    for (; n < n1; ++n) dot_tile<S, MB, 1>(C + n, ldc, A, lda, Bs + std::size_t(n) * ldb, ldb, K, accumulate);
}

}  // namespace

template <class S>
WeightOperand<S> WeightOperand<S>::direct(const S* W, int ldw, int K, int N) {
    constexpr int P = panel_width<S>();
    WeightOperand op;
    op.mode_ = Mode::Panels;
    op.base_ = W;
    op.panel_stride_ = P;
    op.row_stride_ = std::size_t(ldw);
    op.K_ = K;
    op.N_ = N;
    op.panels_ = (N + P - 1) / P;
    const int ragged = N % P;
    if (ragged) {  // reading P columns of the last panel in place would run past the matrix: pad a copy
        op.packed_.assign(std::size_t(K) * P, S(0));
        const int n0 = N - ragged;
        for (int k = 0; k < K; ++k)
            for (int c = 0; c < ragged; ++c) op.packed_[std::size_t(k) * P + c] = W[std::size_t(k) * ldw + n0 + c];
    }
    return op;
}

template <class S>
WeightOperand<S> WeightOperand<S>::transposed(const S* stored, int ldw, int K, int N, bool pack) {
    constexpr int P = panel_width<S>();
    WeightOperand op;
    op.K_ = K;
    op.N_ = N;
    if (!pack) {
        op.mode_ = Mode::Dot;
        op.base_ = stored;
        op.row_stride_ = std::size_t(ldw);
        return op;
    }
    op.mode_ = Mode::Panels;
    op.panels_ = (N + P - 1) / P;
    op.panel_stride_ = std::size_t(K) * P;
    op.row_stride_ = P;
    op.packed_.resize(std::size_t(op.panels_) * K * P);
    S* data = op.packed_.data();
    // Parallel over panels; reads follow the stored rows (contiguous), writes stay inside one panel.
#pragma omp parallel for schedule(static) if (long(K) * N >= (1L << 16))
    for (int p = 0; p < op.panels_; ++p) {
        S* panel = data + std::size_t(p) * K * P;
        const int n0 = p * P, width = std::min(P, N - n0);
        for (int c = 0; c < width; ++c) {
            const S* row = stored + std::size_t(n0 + c) * ldw;
            for (int k = 0; k < K; ++k) panel[std::size_t(k) * P + c] = row[k];
        }
        for (int c = width; c < P; ++c)
            for (int k = 0; k < K; ++k) panel[std::size_t(k) * P + c] = S(0);
    }
    op.base_ = data;
    return op;
}

template <class S>
void WeightOperand<S>::multiply(S* C, int ldc, const S* A, int lda, int M, bool accumulate) const {
    constexpr int P = panel_width<S>();
    const int K = K_, N = N_;
    const long work = long(M) * K * N;
    if (mode_ == Mode::Dot) {
        constexpr int CHUNK = 64;  // stored rows per task
        const int chunks = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (work >= (1L << 16) && chunks > 1)
        for (int q = 0; q < chunks; ++q) {
            const int n0 = q * CHUNK, n1 = std::min(N, n0 + CHUNK);
            int m = 0;
            for (; m + 4 <= M; m += 4)
                dot_rows<S, 4>(C + std::size_t(m) * ldc, ldc, A + std::size_t(m) * lda, lda, base_, row_stride_, n0,
                               n1, K, accumulate);
            for (; m + 2 <= M; m += 2)
                dot_rows<S, 2>(C + std::size_t(m) * ldc, ldc, A + std::size_t(m) * lda, lda, base_, row_stride_, n0,
                               n1, K, accumulate);
            for (; m < M; ++m)
                dot_rows<S, 1>(C + std::size_t(m) * ldc, ldc, A + std::size_t(m) * lda, lda, base_, row_stride_, n0,
                               n1, K, accumulate);
        }
        return;
    }
    const bool padded_tail = base_ != packed_.data() && !packed_.empty();  // direct operand with a ragged end
    // Blocking (GotoBLAS order, without packing A): slices of KC rows of W keep a panel's slice
    // (KC x P values) in L1, and blocks of MC rows of A (MC x KC values) stay in L2 while every panel passes
    // over them. Threads own fixed panels (static schedule, same count every block), so no two threads
    // write the same columns of C and the blocks need no barriers.
    constexpr int KC = 256, MC = 128;
    const int kc = K <= 2 * KC ? K : KC;
    const int mc = M <= 2 * MC ? M : MC;
#pragma omp parallel if (work >= (1L << 16) && panels_ > 1)
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kn = std::min(kc, K - k0);
        for (int m0 = 0; m0 < M; m0 += mc) {
            const int mn = std::min(mc, M - m0);
#pragma omp for schedule(static) nowait
            for (int p = 0; p < panels_; ++p) {
                const int n0 = p * P, width = std::min(P, N - n0);
                const bool tail = padded_tail && p == panels_ - 1;
                const S* panel = tail ? packed_.data() : base_ + std::size_t(p) * panel_stride_;
                const std::size_t stride = tail ? std::size_t(P) : row_stride_;
                panel_times_rows(C + std::size_t(m0) * ldc + n0, ldc, A + std::size_t(m0) * lda + k0, lda,
                                 panel + std::size_t(k0) * stride, stride, kn, mn, width, accumulate || k0 > 0);
            }
        }
    }
}

template class WeightOperand<float>;
template class WeightOperand<double>;

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
