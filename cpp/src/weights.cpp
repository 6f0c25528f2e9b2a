#include "weights.hpp"

#include "gemm.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>


namespace rnnkit {
inline namespace v0 {
namespace detail {

namespace {

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

}  // namespace

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
