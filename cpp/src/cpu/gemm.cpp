#include "cpu/gemm.hpp"

#include <Eigen/Core>

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
using RowMajor = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class S>
using ConstView = Eigen::Map<const RowMajor<S>, 0, Eigen::OuterStride<>>;
template <class S>
using View = Eigen::Map<RowMajor<S>, 0, Eigen::OuterStride<>>;

template <class S>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, S alpha, const S* A, int lda, const S* B, int ldb,
          S beta, S* C, int ldc) {
    if (M == 0 || N == 0) return;
    View<S> c(C, M, N, Eigen::OuterStride<>(ldc));
    if (beta == S(0))
        c.setZero();
    else if (beta != S(1))
        c *= beta;
    if (K == 0) return;
    ConstView<S> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
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
