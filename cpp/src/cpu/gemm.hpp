// Dense matrix products for the kernels, row-major, BLAS-like. Eigen lives only in gemm.cpp, so the
// heavy template instantiations are compiled once.
#pragma once

namespace rnnkit {
inline namespace v0 {
namespace detail {

// C[M, N] = alpha * op(A) * op(B) + beta * C, where op(A) is [M, K] and op(B) is [K, N].
// A is stored [M, K] (trans_a=false) or [K, M] (trans_a=true) with row stride lda; likewise B and ldb.
// beta == 0 overwrites C without reading it.
template <class S>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, S alpha, const S* A, int lda, const S* B, int ldb,
          S beta, S* C, int ldc);

// out[n] += sum over rows r of A[r, n], for A [rows, N] with row stride lda.
template <class S>
void add_column_sums(S* out, const S* A, int rows, int N, int lda);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
