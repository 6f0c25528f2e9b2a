// Scalar activations shared by every cell, on the CPU and (under nvcc) on a GPU.
// Derivatives take activations: dsigmoid = s * (1 - s), dtanh = t * (1 - t * t).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// Functions a CUDA kernel calls too: __host__ __device__ under nvcc, plain inline otherwise.
#if defined(__CUDACC__)
#define RNNKIT_HD __host__ __device__ __forceinline__
#else
#define RNNKIT_HD inline
#endif

namespace rnnkit {
inline namespace v0 {
namespace detail {

using std::exp;
using std::tanh;

// exp for float in a form compilers vectorize inside `#pragma omp simd` loops (no libm call): Cody-Waite
// reduction x = n ln2 + r, a degree-6 polynomial for e^r (Cephes expf), and 2^n built in the exponent bits.
// Relative error below 2e-7 over the clamped range; inputs beyond it saturate; NaN gives NaN.
RNNKIT_HD float fast_exp(float in) {
    // clamp; NaN becomes -87 here (so the integer conversion below stays defined) and is returned as NaN at the end
    const float x = in > -87.0f ? (in < 88.5f ? in : 88.5f) : -87.0f;
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
    const float result = p * __builtin_bit_cast(float, bits);  // 2^n
    return in == in ? result : in;  // NaN in, NaN out
}

// tanh for float: an odd polynomial near 0 (Cephes tanhf, |x| < 0.625), else 1 - 2 / (e^{2|x|} + 1).
RNNKIT_HD float fast_tanh(float x) {
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

// log for a positive, normal float, vectorisable the same way (Cephes logf): x = m 2^e with m in [sqrt(1/2),
// sqrt(2)), a degree-8 polynomial in m - 1, e ln2 added in two parts. Within 2 ulp over the normal range.
RNNKIT_HD float fast_log(float x) {
    const std::int32_t bits = __builtin_bit_cast(std::int32_t, x);
    float e = float(((bits >> 23) & 0xff) - 126);
    float m = __builtin_bit_cast(float, (bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
    const bool low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += e * -2.12194440e-4f;
    y -= 0.5f * z;
    const float result = m + y + e * 0.693359375f;
    return x == x ? result : x;  // NaN in, NaN out
}

// The activations the cells use: fast vectorisable versions for float on the CPU, libm for double (gradient
// checks) and on a GPU.
#if defined(__CUDA_ARCH__)
RNNKIT_HD float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }
RNNKIT_HD float tanh_(float v) { return tanhf(v); }
#else
RNNKIT_HD float sigmoid(float v) { return 1.0f / (1.0f + fast_exp(-v)); }
RNNKIT_HD float tanh_(float v) { return fast_tanh(v); }
#endif
RNNKIT_HD double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }
#if defined(__CUDA_ARCH__)
RNNKIT_HD float exp_(float v) { return expf(v); }
#else
RNNKIT_HD float exp_(float v) { return fast_exp(v); }
#endif
RNNKIT_HD double exp_(double v) { return exp(v); }
RNNKIT_HD double tanh_(double v) { return tanh(v); }
// log σ(x) = min(x, 0) - log(1 + e^-|x|), without overflow (the xLSTM and minLSTM gates)
#if defined(__CUDA_ARCH__)
RNNKIT_HD float log_sigmoid(float x) { return fminf(x, 0.0f) - log1pf(expf(-fabsf(x))); }
#else
RNNKIT_HD float log_sigmoid(float x) { return (x < 0.0f ? x : 0.0f) - fast_log(1.0f + fast_exp(x < 0.0f ? x : -x)); }
#endif
RNNKIT_HD double log_sigmoid(double x) { return (x < 0.0 ? x : 0.0) - std::log1p(std::exp(-std::fabs(x))); }
template <class S>
RNNKIT_HD S relu(S v) { return v > S(0) ? v : S(0); }

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
