// Products with a weight matrix inside the time loop: C[M, N] (+)= A[M, K] · W.
//
// Eigen's GEMM packs both operands on every call; inside the time loop that copies the whole recurrent
// weight matrix at every step, which costs more than the arithmetic when M (the batch) is small. A
// WeightOperand is prepared once per sequence and read by every step:
//   - direct:     W is stored [K, N] row-major (e.g. R [G, H] in dh = dG R). Read in place as column
//                 panels of P values with the matrix's row stride: each weight is streamed once per step.
//   - packed:     W is the transpose of a stored [N, K] matrix (e.g. R^T in h R^T), copied once into
//                 contiguous panels: panel p holds W[k, p*P + c] at data[(p*K + k)*P + c].
//   - dot:        the same transpose read in place by dot products along stored rows, with no copy: for
//                 short, narrow products (small-batch inference) where a copy would cost more than it saves.
// Threads split the columns (panels or row blocks of the stored matrix): no reductions across threads.
//
// Gate structure. The N columns of a transposed operand are `gates` blocks of gate_width columns (i f g o
// of an LSTM, say). Panels never straddle two gates (a gate's ragged last panel is zero-padded), so a
// thread that owns hidden units [u0, u1) can compute columns g*gate_width + [u0, u1) of every gate with
// multiply_units, alone, and run the pointwise pass of those units without waiting for other threads.
#pragma once

#include "cpu/team.hpp"
#include "cpu/workspace.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// Columns per panel: two SIMD registers' worth.
template <class S>
constexpr int panel_width() {
#if defined(__AVX512F__)
    return 2 * 64 / int(sizeof(S));
#else
    return 2 * 32 / int(sizeof(S));
#endif
}

template <class S>
class WeightOperand {
public:
    // W stored [K, N] row-major with row stride ldw, read in place. Copies (packed panels, a padded edge)
    // live in `scratch`, which must outlive the operand.
    // pack=true copies W into contiguous panels first (a long product: in place, every k of a panel is on
    // another page of W).
    static WeightOperand direct(const S* W, int ldw, int K, int N, Scratch<S>& scratch, bool pack = false,
                                bool deferred = false);
    // W = stored^T, stored [N, K] row-major with row stride ldw; pack=true copies it into panels once.
    // gate_width (0: N) splits the N columns into N / gate_width gates, see above.
    // deferred=true leaves the copy to pack_units: each thread of a team packs the panels of the units it
    // owns, at the start of its region (no separate parallel region; the panels land in the cache of the
    // thread that reads them).
    static WeightOperand transposed(const S* stored, int ldw, int K, int N, bool pack, Scratch<S>& scratch,
                                    int gate_width = 0, bool deferred = false);

    // Packs the panels of columns g*gate_width + [u0, u1) of every gate (a deferred operand; else nothing).
    void pack_units(UnitRange u) const;

    // C[M, N] = A[M, K] · W (accumulate=false) or C += A · W; A has row stride lda, C ldc.
    // Parallel over columns: opens its own parallel region.
    void multiply(S* C, int ldc, const S* A, int lda, int M, bool accumulate) const;

    // C[M, N] (+)= At^T · W for At stored [K, M] with row stride ldat (a weight gradient dG^T · x); parallel.
    void multiply_transposed(S* C, int ldc, const S* At, int ldat, int M, bool accumulate) const;

    // The same product for columns g*gate_width + [u0, u1) of every gate only, computed by the calling thread
    // (for use inside a parallel region). u0 must be a multiple of panel_width<S>().
    void multiply_units(S* C, int ldc, const S* A, int lda, int M, int u0, int u1, bool accumulate) const;

private:
    enum class Mode { Panels, Dot };
    struct Panel {
        const S* data;
        std::size_t stride;  // between the panel's rows
        int n0, width;       // the columns of C it produces
    };
    Panel panel(int p) const;  // p = gate * panels_per_gate_ + q
    void fill_panel(int p) const;  // copies panel p from source_
    // Columns [c0, c0 + n) of C from rows [m0, m0 + mn) of A, K range [k0, k0 + kn): panels/rows in order.
    void block(S* C, int ldc, const S* A, int lda, int m0, int mn, int k0, int kn, int p0, int p1,
               bool accumulate, bool transposed_a) const;
    void multiply_team(S* C, int ldc, const S* A, int lda, int M, bool accumulate, bool transposed_a) const;

    Mode mode_ = Mode::Panels;
    const S* base_ = nullptr;     // panels: first panel; dot: the stored [N, K] matrix
    std::size_t panel_stride_ = 0, row_stride_ = 0;
    int K_ = 0, N_ = 0, panels_ = 0;
    int gate_width_ = 0, panels_per_gate_ = 0;
    S* packed_ = nullptr;         // packed panels, or the zero-padded ragged last panel of a direct operand
    const S* source_ = nullptr;   // the matrix packed_ copies (packed operands)
    std::size_t source_ld_ = 0;
    bool source_transposed_ = false;  // source_ is stored [N, K] (transposed) rather than [K, N]
    bool deferred_ = false;
};

// C[M, N] += At^T · X for At [K, M] (row stride ldat) and X [K, N] (row stride ldx): a weight gradient
// (dW += dG^T x) summed over all K = T*B rows. Through panels of X read in place (10-35% faster than Eigen's
// transposed GEMM here) when X has at least two panels of columns, else Eigen.
template <class S>
void add_transposed_product(S* C, int ldc, const S* At, int ldat, int M, const S* X, int ldx, int K, int N);

// Heuristics shared by the kernels: pack transposed weights [K, N] when a sequence has enough rows to repay
// the copy. Weights that fit in L2 copy from cache and repay it within a few rows; larger ones arrive from
// memory (the copy costs about as much as 20-40 matrix-vector steps) and stay in place unless the sequence is
// long: the recurrent weights are then read by dot products, and the input projection (all rows at once) by
// the swapped panel product, within 10-30% of packed panels without the copy.
template <class S>
inline bool small_weights(int K, int N) {
    return long(K) * N * long(sizeof(S)) <= (2L << 20);
}
template <class S>
inline bool pack_recurrent(int T, int B, int K, int N) {
    const long rows = long(T) * B;
    return rows >= 64 || (rows >= 8 && small_weights<S>(K, N));
}
template <class S>
inline bool pack_input(int T, int B, int K, int N) {
    const long rows = long(T) * B;
    return rows >= 256 || (rows >= 8 && small_weights<S>(K, N));
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
