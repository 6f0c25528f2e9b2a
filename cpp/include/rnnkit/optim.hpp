// Optimizer updates over flat parameter arrays, with PyTorch's update rules and operation order
// (torch.optim, single-tensor path), plus gradient clipping and L1/L2 penalties.
// p: parameters [n] (updated in place); g: gradients [n] (read only); state arrays [n] are the
// optimizer's, zero-initialised by the caller; step counts from 1.
#pragma once

#include <cstddef>

namespace rnnkit {
inline namespace v0 {

// d = g + wd p;  buf = d (first step) or momentum buf + (1 - dampening) d;  d = nesterov ? d + momentum buf : buf;
// p -= lr d.   buf may be nullptr when momentum == 0.
template <class S>
void sgd_update(S* p, const S* g, S* buf, std::size_t n, double lr, double momentum, double dampening,
                double weight_decay, bool nesterov, bool first_step);

// Adam (weight_decay added to the gradient) or AdamW (decoupled: p *= 1 - lr wd):
// m = lerp(m, d, 1 - b1);  v = b2 v + (1 - b2) d²;  p -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps).
template <class S>
void adam_update(S* p, const S* g, S* m, S* v, std::size_t n, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, long step);

// v = alpha v + (1 - alpha) d²;  centered: a = lerp(a, d, 1 - alpha), den = sqrt(v - a²) + eps, else sqrt(v) + eps;
// momentum > 0: buf = momentum buf + d / den, p -= lr buf;  else p -= lr d / den.
// grad_avg is used only when centered, buf only when momentum > 0 (else may be nullptr).
template <class S>
void rmsprop_update(S* p, const S* g, S* v, S* grad_avg, S* buf, std::size_t n, double lr, double alpha, double eps,
                    double weight_decay, double momentum, bool centered);

// sum += d²;  p -= lr / (1 + (k - 1) lr_decay) * d / (sqrt(sum) + eps).
template <class S>
void adagrad_update(S* p, const S* g, S* sum, std::size_t n, double lr, double lr_decay, double weight_decay,
                    double eps, long step);

// Σ g², accumulated in double.
template <class S>
double sum_of_squares(const S* g, std::size_t n);

// g *= factor.
template <class S>
void scale(S* g, std::size_t n, double factor);

// g = clamp(g, -limit, limit).
template <class S>
void clip_values(S* g, std::size_t n, double limit);

// Elastic-net penalty on p: returns l1 Σ|p| + l2 Σ p², and adds its gradient l1 sign(p) + 2 l2 p to g.
template <class S>
double add_l1_l2(S* g, const S* p, std::size_t n, double l1, double l2);

}  // namespace v0
}  // namespace rnnkit
