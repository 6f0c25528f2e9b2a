// Register-tile micro-kernels of the packed-matrix products (packed_matrix.cpp): panel kernels over
// packed or in-place column panels, dot-product tiles over stored rows, the swapped panel product, and the
// blocking constants. Everything here is an inline function of one calling thread; packed_matrix.cpp splits
// the work over a team. Shapes: C[M, N] (+)= A[M, K] · W[K, N], row-major, P = panel_width<S>() columns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "cpu/packed_matrix.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace microkernels {

// One SIMD register of S as a GCC/Clang vector type: the dot-product tiles below name their registers
// explicitly (with `#pragma omp simd` loops over arrays gcc kept the accumulators in memory or reloaded
// operands for every product).
template <class S, int V>
using Register [[gnu::vector_size(V * sizeof(S))]] = S;

template <class S, int V>
inline Register<S, V> load_register(const S* p) {
    Register<S, V> r;
    std::memcpy(&r, p, sizeof r);
    return r;
}

// Rows of A per register tile: RB x (one panel = two registers) accumulators plus the two panel registers
// and a broadcast must fit the register file (32 vector registers with AVX-512, 16 below it), or the
// compiler spills accumulators inside the k loop. Without AVX a panel is four registers per row.
template <class S>
constexpr int rows_per_tile() {
#if defined(__AVX512F__)
    return sizeof(S) == 4 ? 8 : 4;
#elif defined(__AVX__)
    return sizeof(S) == 4 ? 6 : 4;
#else
    return 2;
#endif
}

// C[RB, width] = acc, or += acc: whole panels as vector stores, the ragged last panel element by element.
// Transposed (Tr): C[width, RB] = acc^T, element by element.
template <class S, int RB, int P, bool Tr>
inline void store_rows(S* C, int ldc, const S (&acc)[RB][P], int width, bool accumulate) {
    if constexpr (Tr) {
        for (int c = 0; c < width; ++c) {
            S* row = C + std::size_t(c) * ldc;
            for (int r = 0; r < RB; ++r) row[r] = accumulate ? row[r] + acc[r][c] : acc[r][c];
        }
        return;
    }
    for (int r = 0; r < RB; ++r) {
        S* row = C + std::size_t(r) * ldc;
        if (width == P && accumulate) {
#pragma omp simd
            for (int c = 0; c < P; ++c) row[c] += acc[r][c];
        } else if (width == P) {
#pragma omp simd
            for (int c = 0; c < P; ++c) row[c] = acc[r][c];
        } else {
            for (int c = 0; c < width; ++c) row[c] = accumulate ? row[c] + acc[r][c] : acc[r][c];
        }
    }
}

// RB rows of A times one panel (K rows of P values, `stride` apart): RB x 2 accumulator registers, per k two
// panel loads and RB broadcasts.
// TA: A is given transposed, row r of A is column r of the stored [K, M] matrix (a weight gradient's dG^T).
template <class S, int RB, bool Tr = false, bool TA = false>
inline void panel_kernel(S* C, int ldc, const S* A, int lda, const S* panel, std::size_t stride, int K, int width,
                         bool accumulate) {
    constexpr int P = panel_width<S>(), V = P / 2;
    using R = Register<S, V>;
    R acc[RB][2] = {};
    for (int k = 0; k < K; ++k) {
        const S* w = panel + std::size_t(k) * stride;
        const R w0 = load_register<S, V>(w), w1 = load_register<S, V>(w + V);
        for (int r = 0; r < RB; ++r) {
            const S a = TA ? A[std::size_t(k) * lda + r] : A[std::size_t(r) * lda + k];
            acc[r][0] += a * w0;
            acc[r][1] += a * w1;
        }
    }
    S out[RB][P];
    std::memcpy(out, acc, sizeof out);
    store_rows<S, RB, P, Tr>(C, ldc, out, width, accumulate);
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

// M rows of A times one panel: C[M, width] (+)= A · panel, or with Tr the transpose, C[width, M]; with TA
// the rows of A are the columns of the stored matrix A points to.
template <class S, bool Tr = false, bool TA = false>
inline void panel_times_rows(S* C, int ldc, const S* A, int lda, const S* panel, std::size_t stride, int K, int M,
                             int width, bool accumulate) {
    constexpr int RB = rows_per_tile<S>();
    auto out = [&](int r) { return Tr ? C + r : C + std::size_t(r) * ldc; };  // where row r of the product goes
    auto row = [&](int r) { return TA ? A + r : A + std::size_t(r) * lda; };  // where row r of A starts
    if (M == 1 && !Tr && !TA) return panel_vector_kernel(C, A, panel, stride, K, width, accumulate);
    int r = 0;
    for (; r + RB <= M; r += RB)
        panel_kernel<S, RB, Tr, TA>(out(r), ldc, row(r), lda, panel, stride, K, width, accumulate);
    for (; r + 2 <= M; r += 2)
        panel_kernel<S, 2, Tr, TA>(out(r), ldc, row(r), lda, panel, stride, K, width, accumulate);
    for (; r < M; ++r) {
        if constexpr (Tr || TA)
            panel_kernel<S, 1, Tr, TA>(out(r), ldc, row(r), lda, panel, stride, K, width, accumulate);
        else
            panel_vector_kernel(out(r), row(r), panel, stride, K, width, accumulate);
    }
}

// The sum of a register's lanes by halves: log2 V adds on ever narrower registers.
template <class S, int V>
inline S lane_sum(Register<S, V> r) {
    if constexpr (V == 1) {
        return r[0];
    } else {
        Register<S, V / 2> lo, hi;
        std::memcpy(&lo, &r, sizeof lo);
        std::memcpy(&hi, reinterpret_cast<const char*>(&r) + sizeof lo, sizeof hi);
        return lane_sum<S, V / 2>(lo + hi);
    }
}

// C[MB, NB] of dot products of rows of A with rows of the stored matrix, vectorised along k: per step of k,
// MB + NB register loads feed MB * NB fused multiply-adds.
template <class S, int MB, int NB>
inline void dot_tile(S* C, int ldc, const S* A, int lda, const S* Bs, std::size_t ldb, int K, bool accumulate) {
    constexpr int V = panel_width<S>() / 2;  // lanes of one SIMD register of S
    using R = Register<S, V>;
    R acc[MB][NB] = {};
    int k = 0;
    for (; k + V <= K; k += V) {
        R a[MB], b[NB];
        for (int i = 0; i < MB; ++i) a[i] = load_register<S, V>(A + std::size_t(i) * lda + k);
        for (int j = 0; j < NB; ++j) b[j] = load_register<S, V>(Bs + std::size_t(j) * ldb + k);
        for (int i = 0; i < MB; ++i)
            for (int j = 0; j < NB; ++j) acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < MB; ++i)
        for (int j = 0; j < NB; ++j) {
            S sum = lane_sum<S, V>(acc[i][j]);
            for (int kk = k; kk < K; ++kk) sum += A[std::size_t(i) * lda + kk] * Bs[std::size_t(j) * ldb + kk];
            S& c = C[std::size_t(i) * ldc + j];
            c = accumulate ? c + sum : sum;
        }
}

template <class S, int MB>
inline void dot_rows(S* C, int ldc, const S* A, int lda, const S* Bs, std::size_t ldb, int n0, int n1, int K,
                     bool accumulate) {
    int n = n0;
    if constexpr (MB == 1)  // a matrix-vector product: eight stored rows in flight hide more memory latency
        for (; n + 8 <= n1; n += 8) dot_tile<S, 1, 8>(C + n, ldc, A, lda, Bs + std::size_t(n) * ldb, ldb, K, accumulate);
    for (; n + 4 <= n1; n += 4) dot_tile<S, MB, 4>(C + n, ldc, A, lda, Bs + std::size_t(n) * ldb, ldb, K, accumulate);
    for (; n < n1; ++n) dot_tile<S, MB, 1>(C + n, ldc, A, lda, Bs + std::size_t(n) * ldb, ldb, K, accumulate);
}

// Blocking (GotoBLAS order, without packing A): slices of KC rows of W keep a panel's slice (KC x P values)
// in L1, and blocks of MC rows of A (MC x KC values) stay in L2 while every panel passes over them.
constexpr int KC = 256, MC = 128;
// Two loop orders. When the MC rows of A (all of K) fit in half of L2, blocks of C of MC rows x 8 panels
// (128 x 256 floats with AVX-512) stay in L2 while every K slice passes over them: with the K slice outermost,
// C travelled to L3 and back once per slice (10-20% slower at K = 1024). Longer rows of A (K = 4096 in a
// backward dx) would then stream from L3 for every block of C instead, so there the K slice stays outermost
// and each MC x KC block of A serves every panel.
constexpr int kPanelGroup = 8;
template <class S>
inline bool c_blocks_first(int mc, int K) {
    return std::size_t(mc) * K * sizeof(S) <= (512u << 10);
}
inline int k_block(int K) { return K <= 2 * KC ? K : KC; }
inline int m_block(int M) { return M <= 2 * MC ? M : MC; }

// C[:, n0:n1] (+)= A · Bs[n0:n1]^T for many rows of A (M >= kSwapRows) without packing the large stored
// matrix: transposed, C^T[n, m] = Σ_k Bs[n, k] A[m, k] is a panel product in which the stored rows are the
// register tile's rows (read in place, broadcast) and A^T, small, is packed into panels by the calling thread.
constexpr int kSwapRows = 16;

template <class S>
inline void swapped_product(S* C, int ldc, const S* A, int lda, int M, const S* Bs, std::size_t ldb, int n0, int n1,
                            int K, bool accumulate) {
    constexpr int P = panel_width<S>();
    const int panels = (M + P - 1) / P;
    Scratch<S> mem;
    S* at = mem.take(std::size_t(panels) * K * P);  // panel q: at[(q*K + k)*P + c] = A[q*P + c, k], zero-padded
    for (int q = 0; q < panels; ++q)
        for (int c = 0; c < P; ++c) {
            const int m = q * P + c;
            S* col = at + std::size_t(q) * K * P + c;
            if (m < M)
                for (int k = 0; k < K; ++k) col[std::size_t(k) * P] = A[std::size_t(m) * lda + k];
            else
                for (int k = 0; k < K; ++k) col[std::size_t(k) * P] = S(0);
        }
    const int kc = k_block(K);
    constexpr int NC = 64;  // stored rows per block: NC x kc values stay in L2 while the panels pass
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kn = std::min(kc, K - k0);
        for (int c0 = n0; c0 < n1; c0 += NC) {
            const int cn = std::min(NC, n1 - c0);
            for (int q = 0; q < panels; ++q)
                panel_times_rows<S, true>(C + std::size_t(q) * P * ldc + c0, ldc, Bs + std::size_t(c0) * ldb + k0,
                                          int(ldb), at + (std::size_t(q) * K + k0) * P, P, kn, cn,
                                          std::min(P, M - q * P), accumulate || k0 > 0);
        }
    }
}

// Dot products for stored rows [n0, n1) (columns of C), every row of A: chunks of 64 stored rows stay in L2
// while every row of A passes over them. Many rows of A take the swapped panel product instead.
template <class S>
inline void dot_block(S* C, int ldc, const S* A, int lda, int M, const S* Bs, std::size_t ldb, int n0, int n1, int K,
                      bool accumulate) {
    if (M >= kSwapRows) return swapped_product(C, ldc, A, lda, M, Bs, ldb, n0, n1, K, accumulate);
    constexpr int CHUNK = 64;
    for (int c0 = n0; c0 < n1; c0 += CHUNK) {
        const int c1 = std::min(n1, c0 + CHUNK);
        int m = 0;
        for (; m + 4 <= M; m += 4)
            dot_rows<S, 4>(C + std::size_t(m) * ldc, ldc, A + std::size_t(m) * lda, lda, Bs, ldb, c0, c1, K,
                           accumulate);
        for (; m + 2 <= M; m += 2)
            dot_rows<S, 2>(C + std::size_t(m) * ldc, ldc, A + std::size_t(m) * lda, lda, Bs, ldb, c0, c1, K,
                           accumulate);
        for (; m < M; ++m)
            dot_rows<S, 1>(C + std::size_t(m) * ldc, ldc, A + std::size_t(m) * lda, lda, Bs, ldb, c0, c1, K,
                           accumulate);
    }
}

}  // namespace microkernels
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
