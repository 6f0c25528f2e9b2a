// Eigen never parallelises a product itself here: its parallel GEMM sizes its blocks by the number of threads,
// so results would change with the thread count. Threads take fixed blocks of rows of C instead (gemm below).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif

#include "cpu/gemm.hpp"

#include <algorithm>

#include <Eigen/Core>

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
using RowMajor = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class S>
using ConstView = Eigen::Map<const RowMajor<S>, 0, Eigen::OuterStride<>>;
template <class S>
using View = Eigen::Map<RowMajor<S>, 0, Eigen::OuterStride<>>;

// One block of rows [m0, m0 + mn) of C, on the calling thread.
template <class S>
void gemm_rows(bool trans_a, bool trans_b, int m0, int mn, int N, int K, S alpha, const S* A, int lda, const S* B,
               int ldb, S beta, S* C, int ldc) {
    View<S> c(C + std::size_t(m0) * ldc, mn, N, Eigen::OuterStride<>(ldc));
    if (beta == S(0))
        c.setZero();
    else if (beta != S(1))
        c *= beta;
    if (K == 0) return;
    // op(A)'s rows [m0, m0 + mn): rows of A, or columns of the stored [K, M] matrix
    ConstView<S> a(trans_a ? A + m0 : A + std::size_t(m0) * lda, trans_a ? K : mn, trans_a ? mn : K,
                   Eigen::OuterStride<>(lda));
    ConstView<S> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
    if (!trans_a && !trans_b)
        c.noalias() += alpha * a * b;
    else if (!trans_a && trans_b)
        c.noalias() += alpha * a * b.transpose();
    else if (trans_a && !trans_b)
        c.noalias() += alpha * a.transpose() * b;
    else
        c.noalias() += alpha * a.transpose() * b.transpose();
}

// Rows of C per block: a function of the sizes only, never of the thread count, so every element of C is
// computed by the same Eigen call (same blocking, same summation order) however many threads share the blocks.
// Blocks stay large enough (at least 64 rows and about 2^18 multiply-adds) to amortise packing op(B).
inline int gemm_block_rows(int M, int N, int K) {
    const long per_row = std::max(1L, long(N) * K);
    long rows = std::max(64L, (1L << 18) / per_row);
    rows = std::max(rows, (long(M) + 15) / 16);  // at most 16 blocks
    return int(std::min<long>(M, (rows + 7) / 8 * 8));
}

template <class S>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, S alpha, const S* A, int lda, const S* B, int ldb,
          S beta, S* C, int ldc) {
    if (M == 0 || N == 0) return;
    const int rows = gemm_block_rows(M, N, K), blocks = (M + rows - 1) / rows;
#ifdef RNNKIT_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (blocks > 1 && !omp_in_parallel())
#endif
    for (int q = 0; q < blocks; ++q)
        gemm_rows(trans_a, trans_b, q * rows, std::min(rows, M - q * rows), N, K, alpha, A, lda, B, ldb, beta, C,
                  ldc);
}

// Row by row in a fixed order, so results do not depend on the data's alignment (Eigen's vectorised
// reductions do): a rerun with the same inputs is bitwise identical.
template <class S>
void add_column_sums(S* out, const S* A, int rows, int N, int lda) {
    for (int r = 0; r < rows; ++r) {
        const S* row = A + std::size_t(r) * lda;
#pragma omp simd
        for (int n = 0; n < N; ++n) out[n] += row[n];
    }
}

template void gemm<float>(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*,
                          int);
template void gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double,
                           double*, int);
template void add_column_sums<float>(float*, const float*, int, int, int);
template void add_column_sums<double>(double*, const double*, int, int, int);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
