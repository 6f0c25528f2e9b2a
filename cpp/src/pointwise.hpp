// Scalar activations and small row helpers shared by the kernels. Derivatives take activations:
// dsigmoid = s * (1 - s), dtanh = t * (1 - t * t).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gemm.hpp"
#include "weights.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// exp for float in a form compilers vectorize inside `#pragma omp simd` loops (no libm call): Cody-Waite
// reduction x = n ln2 + r, a degree-6 polynomial for e^r (Cephes expf), and 2^n built in the exponent bits.
// Relative error below 2e-7 over the clamped range; inputs beyond it saturate.
inline float fast_exp(float x) {
    x = std::min(std::max(x, -87.0f), 88.5f);
    // round to nearest by adding and removing 1.5 * 2^23 (vectorises, unlike std::floor under gcc's
    // default -ftrapping-math)
    const float shifted = x * 1.44269504088896341f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
    return p * __builtin_bit_cast(float, bits);  // 2^n
}

// tanh for float: an odd polynomial near 0 (Cephes tanhf, |x| < 0.625), else 1 - 2 / (e^{2|x|} + 1).
inline float fast_tanh(float x) {
    const float ax = std::fabs(x);
    const float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = x + x * z * p;
    const float big = 1.0f - 2.0f / (fast_exp(2.0f * ax) + 1.0f);
    return ax < 0.625f ? small : std::copysign(big, x);
}

// The activations the kernels use: fast vectorisable versions for float, libm for double (gradient checks).
inline float sigmoid(float v) { return 1.0f / (1.0f + fast_exp(-v)); }
inline double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
inline float tanh_(float v) { return fast_tanh(v); }
inline double tanh_(double v) { return std::tanh(v); }

template <class S>
inline void copy_row(S* dst, const S* src, int n) {
    std::memcpy(dst, src, sizeof(S) * static_cast<std::size_t>(n));
}

template <class S>
inline void zero_row(S* dst, int n) {
    std::memset(dst, 0, sizeof(S) * static_cast<std::size_t>(n));
}

// pre[rows, G] (row stride ld) = x[rows, I] W^T + bW + bR for the columns g*H + [u0, u1) of every gate, the
// input projection of many time steps at once, computed by the calling thread for the units it owns.
// WT is the operand W^T [I, G] with gate width H (see weights.hpp); G = gates * H.
template <class S>
inline void project_units(S* pre, int ld, const S* x, const WeightOperand<S>& WT, const S* bW, const S* bR,
                          int rows, int I, int G, int H, UnitRange u) {
    WT.multiply_units(pre, ld, x, I, rows, u.u0, u.u1, false);
    if (bW == nullptr && bR == nullptr) return;
    for (int r = 0; r < rows; ++r) {
        S* p = pre + static_cast<std::size_t>(r) * ld;
        for (int g0 = 0; g0 < G; g0 += H)
#pragma omp simd
            for (int j = g0 + u.u0; j < g0 + u.u1; ++j) p[j] += (bW ? bW[j] : S(0)) + (bR ? bR[j] : S(0));
    }
}

// Whether a sequence's time loop runs on a team of threads that own hidden units (one barrier per step):
// when a step has enough arithmetic to repay the barrier and the units split into at least two blocks.
template <class S>
inline bool team_loop(int B, int H, int G) {
    return long(B) * H * G >= (1L << 16) && H > panel_width<S>();
}

// Initial state into a slot: a copy of init, or zeros.
template <class S>
inline void set_state(S* slot, const S* init, int n) {
    if (init)
        copy_row(slot, init, n);
    else
        zero_row(slot, n);
}

// Recurrent dropout: the recurrent products read h * mask, written to dst for batch rows [0, B) and units
// [u0, u1) (the calling thread's own units); dst, h, mask are [B, H].
template <class S>
inline void mask_units(S* dst, const S* h, const S* mask, int B, int H, UnitRange u) {
    for (int b = 0; b < B; ++b) {
        const std::size_t row = std::size_t(b) * H;
#pragma omp simd
        for (int j = u.u0; j < u.u1; ++j) dst[row + j] = h[row + j] * mask[row + j];
    }
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

// dh += drec * mask for batch rows [0, B) and units [u0, u1): the gradient w.r.t. the masked recurrent input,
// carried back to the state. All three are [B, H].
template <class S>
inline void add_masked_units(S* dh, const S* drec, const S* mask, int B, int H, UnitRange u) {
    for (int b = 0; b < B; ++b) {
        const std::size_t row = std::size_t(b) * H;
#pragma omp simd
        for (int j = u.u0; j < u.u1; ++j) dh[row + j] += drec[row + j] * mask[row + j];
    }
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
