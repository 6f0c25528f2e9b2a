// Losses: each returns the mean loss (accumulated in double) and writes the gradient w.r.t. its input (=).
// Rows may be masked out (mask[r] == 0: padded steps): the mean runs over unmasked rows only.
// N = rows, C = classes or columns per row.
#pragma once

#include <cstdint>

namespace rnnkit {
inline namespace v0 {

// L = mean over unmasked entries of (pred - target)^2;  dpred = 2 (pred - target) / count.
// dpred, pred, target: [N, C]; mask: [N] or nullptr.
template <class S>
double mse_loss(S* dpred, const S* pred, const S* target, const std::uint8_t* mask, int N, int C);

// L = mean over unmasked rows of logsumexp(z) - z[target];  dz = (softmax(z) - onehot(target)) / rows.
// dlogits, logits: [N, C]; targets: [N] in 0..C-1 (checked for unmasked rows); mask: [N] or nullptr.
template <class S>
double cross_entropy_loss(S* dlogits, const S* logits, const std::int64_t* targets, const std::uint8_t* mask, int N,
                          int C);

// L = mean of max(z, 0) - z t + log(1 + exp(-|z|));  dz = (σ(z) - t) / count.
// dlogits, logits, targets: [N, C]; mask: [N] or nullptr.
template <class S>
double bce_with_logits_loss(S* dlogits, const S* logits, const S* targets, const std::uint8_t* mask, int N, int C);

}  // namespace v0
}  // namespace rnnkit
