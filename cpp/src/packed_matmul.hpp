// The per-step recurrent product C[M, N] (+)= A[M, K] · W[K, N] with W packed once per sequence.
//
// Eigen's GEMM packs both operands on every call; inside the time loop that means copying the whole
// recurrent weight matrix at every step, which costs more than the arithmetic when M (the batch) is small.
// Here W is packed once into column panels of kPanel values, panel-major: panel p holds W[k, p*kPanel + c]
// at data[(p*K + k)*kPanel + c], so a step streams each weight exactly once, contiguously, and threads split
// the panels (no reductions). For M = 1 this is a matrix-vector product at memory bandwidth.
#pragma once

#include <vector>

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
struct PackedWeights {
    std::vector<S> data;
    int K = 0, N = 0, panels = 0;
};

// Columns per panel: two SIMD registers' worth.
template <class S>
constexpr int packed_panel() {
#if defined(__AVX512F__)
    return 2 * 64 / int(sizeof(S));
#else
    return 2 * 32 / int(sizeof(S));
#endif
}

// Pack W into `out`. W is given row-major either as [K, N] (transposed=false, row stride ldw) or as [N, K]
// (transposed=true, i.e. the product uses W^T of a stored [N, K] matrix, like h R^T with R [G, H]).
template <class S>
void pack_weights(PackedWeights<S>& out, const S* W, int ldw, bool transposed, int K, int N);

// C[M, N] = A[M, K] · W (accumulate=false) or C += A · W (accumulate=true). A has row stride lda, C ldc.
template <class S>
void packed_matmul(S* C, int ldc, const S* A, int lda, const PackedWeights<S>& W, int M, bool accumulate);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
