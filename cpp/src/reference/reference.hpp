// The reference backend: one plain, single-threaded forward/backward pair per cell, written from the
// formulas (no packing, no thread team, no fast activations' tricks beyond the cell's own functions): the
// files a newcomer reads first, and the oracle every other driver is tested against (tests/test_drivers.py,
// cpp/tests/test_drivers.cpp). They follow the same SeqForward/SeqBackward contract (sequence.hpp): slots,
// saved gates, lengths (in decreasing order), recurrent dropout masks.
#pragma once

#include "sequence.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {
namespace reference {

template <class S> void lstm_forward(const SeqForward<S>& a);
template <class S> void lstm_backward(const SeqBackward<S>& a);
template <class S> void gru_forward(const SeqForward<S>& a);
template <class S> void gru_backward(const SeqBackward<S>& a);
template <class S> void rnn_forward(const SeqForward<S>& a);   // a.cell's kind picks tanh or relu
template <class S> void rnn_backward(const SeqBackward<S>& a);

// Small helpers the reference files share: y[M, N] (+)= A[M, K] B^T for B [N, K], all row-major.
template <class S>
inline void matmul_bt(S* y, int ldy, const S* A, int lda, const S* Bm, int ldb, int M, int N, int K, bool accumulate) {
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            S acc = accumulate ? y[std::size_t(m) * ldy + n] : S(0);
            for (int k = 0; k < K; ++k) acc += A[std::size_t(m) * lda + k] * Bm[std::size_t(n) * ldb + k];
            y[std::size_t(m) * ldy + n] = acc;
        }
}

}  // namespace reference
}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
