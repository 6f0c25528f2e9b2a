// Scalar activations and small row helpers shared by the kernels. Derivatives take activations:
// dsigmoid = s * (1 - s), dtanh = t * (1 - t * t).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gemm.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

template <class S>
inline S sigmoid(S v) {
    return S(1) / (S(1) + std::exp(-v));
}

template <class S>
inline void copy_row(S* dst, const S* src, int n) {
    std::memcpy(dst, src, sizeof(S) * static_cast<std::size_t>(n));
}

template <class S>
inline void zero_row(S* dst, int n) {
    std::memset(dst, 0, sizeof(S) * static_cast<std::size_t>(n));
}

// pre[rows, G] (row stride ld) = x[rows, I] W^T + bW + bR, the input projection of many time steps at once.
template <class S>
inline void project_inputs(S* pre, int ld, const S* x, const S* W, const S* bW, const S* bR, int rows, int I,
                           int G) {
    gemm<S>(false, true, rows, G, I, S(1), x, I, W, I, S(0), pre, ld);
    if (bW == nullptr && bR == nullptr) return;
    for (int r = 0; r < rows; ++r) {
        S* p = pre + static_cast<std::size_t>(r) * ld;
        if (bW)
            for (int j = 0; j < G; ++j) p[j] += bW[j];
        if (bR)
            for (int j = 0; j < G; ++j) p[j] += bR[j];
    }
}

// Initial state into a slot: a copy of init, or zeros.
template <class S>
inline void set_state(S* slot, const S* init, int n) {
    if (init)
        copy_row(slot, init, n);
    else
        zero_row(slot, n);
}

// The recurrent GEMMs' input: h_prev itself, or h_prev * mask written to scratch ([B, H] each).
template <class S>
inline const S* recurrent_input(S* scratch, const S* h_prev, const S* mask, std::size_t n) {
    if (!mask) return h_prev;
    for (std::size_t i = 0; i < n; ++i) scratch[i] = h_prev[i] * mask[i];
    return scratch;
}

// All T recurrent inputs for the weight gradient: h_prev_all itself, or h_prev_all * mask in `buffer`.
template <class S>
inline const S* recurrent_inputs(std::vector<S>& buffer, const S* h_prev_all, const S* mask, int T, std::size_t BH) {
    if (!mask) return h_prev_all;
    buffer.resize(std::size_t(T) * BH);
    for (int t = 0; t < T; ++t)
        for (std::size_t i = 0; i < BH; ++i) buffer[t * BH + i] = h_prev_all[t * BH + i] * mask[i];
    return buffer.data();
}

// dh += drec * mask: the gradient w.r.t. the masked recurrent input, carried back to the state.
template <class S>
inline void add_masked(S* dh, const S* drec, const S* mask, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dh[i] += drec[i] * mask[i];
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
