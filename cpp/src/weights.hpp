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
#pragma once

#include <vector>

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
    // W stored [K, N] row-major with row stride ldw, read in place.
    static WeightOperand direct(const S* W, int ldw, int K, int N);
    // W = stored^T, stored [N, K] row-major with row stride ldw; pack=true copies it into panels once.
    static WeightOperand transposed(const S* stored, int ldw, int K, int N, bool pack);

    // C[M, N] = A[M, K] · W (accumulate=false) or C += A · W; A has row stride lda, C ldc.
    void multiply(S* C, int ldc, const S* A, int lda, int M, bool accumulate) const;

private:
    enum class Mode { Panels, Dot };
    Mode mode_ = Mode::Panels;
    const S* base_ = nullptr;     // panels: first panel; dot: the stored [N, K] matrix
    std::size_t panel_stride_ = 0, row_stride_ = 0;
    int K_ = 0, N_ = 0, panels_ = 0;
    std::vector<S> packed_;       // packed panels, or the zero-padded ragged last panel of a direct operand
};

// Heuristic shared by the kernels: pack transposed weights when a sequence has enough rows to repay the copy.
inline bool worth_packing(int T, int B) { return long(T) * B >= 64; }

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
