// Losses with their gradients. See rnnkit/losses.hpp.
#include "rnnkit/losses.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace rnnkit {
inline namespace v0 {

namespace {
int count_rows(const std::uint8_t* mask, int N) {
    if (!mask) return N;
    int n = 0;
    for (int r = 0; r < N; ++r) n += mask[r] != 0;
    return n;
}
}  // namespace

template <class S>
double mse_loss(S* dpred, const S* pred, const S* target, const std::uint8_t* mask, int N, int C) {
    const double count = double(count_rows(mask, N)) * C;
    double total = 0;
    for (int r = 0; r < N; ++r) {
        const std::size_t at = std::size_t(r) * C;
        const bool on = !mask || mask[r];
        for (int c = 0; c < C; ++c) {
            const S diff = pred[at + c] - target[at + c];
            if (on) total += double(diff) * double(diff);
            dpred[at + c] = on && count > 0 ? S(2.0 * double(diff) / count) : S(0);
        }
    }
    return count > 0 ? total / count : 0.0;
}

template <class S>
double cross_entropy_loss(S* dlogits, const S* logits, const std::int64_t* targets, const std::uint8_t* mask, int N,
                          int C) {
    const int rows = count_rows(mask, N);
    double total = 0;
    for (int r = 0; r < N; ++r) {
        const S* z = logits + std::size_t(r) * C;
        S* dz = dlogits + std::size_t(r) * C;
        if (mask && !mask[r]) {
            std::fill(dz, dz + C, S(0));
            continue;
        }
        const std::int64_t k = targets[r];
        if (k < 0 || k >= C)
            throw std::invalid_argument("target: expected class indices in 0.." + std::to_string(C - 1) + ", got " +
                                        std::to_string(k) + " at row " + std::to_string(r));
        // logsumexp(z) = m + log Σ exp(z - m)
        const S m = *std::max_element(z, z + C);
        double sum = 0;
        for (int c = 0; c < C; ++c) sum += std::exp(double(z[c] - m));
        const double lse = double(m) + std::log(sum);
        total += lse - double(z[k]);
        for (int c = 0; c < C; ++c) dz[c] = S(std::exp(double(z[c]) - lse) / rows);
        dz[k] -= S(1.0 / rows);
    }
    return rows > 0 ? total / rows : 0.0;
}

template <class S>
double bce_with_logits_loss(S* dlogits, const S* logits, const S* targets, const std::uint8_t* mask, int N, int C) {
    const double count = double(count_rows(mask, N)) * C;
    double total = 0;
    for (int r = 0; r < N; ++r) {
        const std::size_t at = std::size_t(r) * C;
        const bool on = !mask || mask[r];
        for (int c = 0; c < C; ++c) {
            const double z = logits[at + c], t = targets[at + c];
            if (on) total += std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::fabs(z)));
            const double s = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
            dlogits[at + c] = on && count > 0 ? S((s - t) / count) : S(0);
        }
    }
    return count > 0 ? total / count : 0.0;
}

#define RNNKIT_INSTANTIATE(S)                                                                                   \
    template double mse_loss<S>(S*, const S*, const S*, const std::uint8_t*, int, int);                         \
    template double cross_entropy_loss<S>(S*, const S*, const std::int64_t*, const std::uint8_t*, int, int);    \
    template double bce_with_logits_loss<S>(S*, const S*, const S*, const std::uint8_t*, int, int);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace v0
}  // namespace rnnkit
