#include "packed_matmul.hpp"

#include <algorithm>
#include <cstddef>

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
void pack_weights(PackedWeights<S>& out, const S* W, int ldw, bool transposed, int K, int N) {
    constexpr int P = packed_panel<S>();
    out.K = K;
    out.N = N;
    out.panels = (N + P - 1) / P;
    out.data.assign(std::size_t(out.panels) * K * P, S(0));
    for (int p = 0; p < out.panels; ++p) {
        S* panel = out.data.data() + std::size_t(p) * K * P;
        const int n0 = p * P, width = std::min(P, N - n0);
        for (int k = 0; k < K; ++k)
            for (int c = 0; c < width; ++c)
                panel[std::size_t(k) * P + c] =
                    transposed ? W[std::size_t(n0 + c) * ldw + k] : W[std::size_t(k) * ldw + n0 + c];
    }
}

namespace {

// RB rows of A times one panel: acc[RB][P] kept in registers, one streaming pass over the panel.
template <class S, int RB>
inline void micro_kernel(S* C, int ldc, const S* A, int lda, const S* panel, int K, int width, bool accumulate) {
    constexpr int P = packed_panel<S>();
    S acc[RB][P];
    for (int r = 0; r < RB; ++r)
#pragma omp simd
        for (int c = 0; c < P; ++c) acc[r][c] = S(0);
    for (int k = 0; k < K; ++k) {
        const S* w = panel + std::size_t(k) * P;
        for (int r = 0; r < RB; ++r) {
            const S a = A[std::size_t(r) * lda + k];
#pragma omp simd
            for (int c = 0; c < P; ++c) acc[r][c] += a * w[c];
        }
    }
    for (int r = 0; r < RB; ++r) {
        S* row = C + std::size_t(r) * ldc;
        if (width == P) {
            if (accumulate) {
#pragma omp simd
                for (int c = 0; c < P; ++c) row[c] += acc[r][c];
            } else {
#pragma omp simd
                for (int c = 0; c < P; ++c) row[c] = acc[r][c];
            }
        } else {
            for (int c = 0; c < width; ++c) row[c] = accumulate ? row[c] + acc[r][c] : acc[r][c];
        }
    }
}

// One row of A (a matrix-vector product): four partial sums over k hide the FMA latency.
template <class S>
inline void vector_kernel(S* C, const S* A, const S* panel, int K, int width, bool accumulate) {
    constexpr int P = packed_panel<S>();
    S acc[4][P];
    for (int u = 0; u < 4; ++u)
#pragma omp simd
        for (int c = 0; c < P; ++c) acc[u][c] = S(0);
    int k = 0;
    for (; k + 4 <= K; k += 4)
        for (int u = 0; u < 4; ++u) {
            const S a = A[k + u];
            const S* w = panel + std::size_t(k + u) * P;
#pragma omp simd
            for (int c = 0; c < P; ++c) acc[u][c] += a * w[c];
        }
    for (; k < K; ++k) {
        const S a = A[k];
        const S* w = panel + std::size_t(k) * P;
#pragma omp simd
        for (int c = 0; c < P; ++c) acc[0][c] += a * w[c];
    }
    for (int c = 0; c < width; ++c) {
        const S sum = (acc[0][c] + acc[1][c]) + (acc[2][c] + acc[3][c]);
        C[c] = accumulate ? C[c] + sum : sum;
    }
}

template <class S>
inline void panel_times_rows(S* C, int ldc, const S* A, int lda, const S* panel, int K, int M, int width,
                             bool accumulate) {
    constexpr int RB = sizeof(S) == 4 ? 8 : 4;
    int r = 0;
    for (; r + RB <= M; r += RB)
        micro_kernel<S, RB>(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, panel, K, width, accumulate);
    for (; r + 4 <= M; r += 4)
        micro_kernel<S, 4>(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, panel, K, width, accumulate);
    if (M == 1) return vector_kernel(C, A, panel, K, width, accumulate);
    for (; r < M; ++r)
        micro_kernel<S, 1>(C + std::size_t(r) * ldc, ldc, A + std::size_t(r) * lda, lda, panel, K, width, accumulate);
}

}  // namespace

template <class S>
void packed_matmul(S* C, int ldc, const S* A, int lda, const PackedWeights<S>& W, int M, bool accumulate) {
    constexpr int P = packed_panel<S>();
    const int K = W.K, N = W.N, panels = W.panels;
    // Threads take whole panels; small products stay on one thread (a parallel region costs microseconds).
    const long work = long(M) * K * N;
#pragma omp parallel for schedule(static) if (work >= (1L << 16) && panels > 1)
    for (int p = 0; p < panels; ++p) {
        const int n0 = p * P;
        panel_times_rows(C + n0, ldc, A, lda, W.data.data() + std::size_t(p) * K * P, K, M, std::min(P, N - n0),
                         accumulate);
    }
}

template void pack_weights<float>(PackedWeights<float>&, const float*, int, bool, int, int);
template void pack_weights<double>(PackedWeights<double>&, const double*, int, bool, int, int);
template void packed_matmul<float>(float*, int, const float*, int, const PackedWeights<float>&, int, bool);
template void packed_matmul<double>(double*, int, const double*, int, const PackedWeights<double>&, int, bool);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
