// Optimizer update loops. See rnnkit/optim.hpp; the order of operations follows torch.optim so that
// float32 results agree to rounding.
#include "rnnkit/optim.hpp"

#include <algorithm>
#include <cmath>

namespace rnnkit {
inline namespace v0 {

template <class S>
void sgd_update(S* p, const S* g, S* buf, std::size_t n, double lr, double momentum, double dampening,
                double weight_decay, bool nesterov, bool first_step) {
    const S wd = S(weight_decay), mom = S(momentum), damp = S(1.0 - dampening), rate = S(lr);
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
        S d = weight_decay != 0 ? g[i] + wd * p[i] : g[i];
        if (momentum != 0) {
            buf[i] = first_step ? d : buf[i] * mom + damp * d;
            d = nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= rate * d;
    }
}

template <class S>
void adam_update(S* p, const S* g, S* m, S* v, std::size_t n, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, long step) {
    const double bc1 = 1.0 - std::pow(beta1, double(step));
    const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, double(step)));
    const S step_size = S(lr / bc1), b1c = S(1.0 - beta1), b2 = S(beta2), b2c = S(1.0 - beta2);
    const S wd = S(weight_decay), shrink = S(1.0 - lr * weight_decay), e = S(eps), bc2s = S(bc2_sqrt);
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
        S d = g[i];
        if (weight_decay != 0) {
            if (decoupled)
                p[i] *= shrink;
            else
                d += wd * p[i];
        }
        m[i] += b1c * (d - m[i]);
        v[i] = v[i] * b2 + b2c * d * d;
        const S denom = std::sqrt(v[i]) / bc2s + e;
        p[i] -= step_size * m[i] / denom;
    }
}

template <class S>
void rmsprop_update(S* p, const S* g, S* v, S* grad_avg, S* buf, std::size_t n, double lr, double alpha, double eps,
                    double weight_decay, double momentum, bool centered) {
    const S a = S(alpha), ac = S(1.0 - alpha), wd = S(weight_decay), e = S(eps), rate = S(lr), mom = S(momentum);
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
        const S d = weight_decay != 0 ? g[i] + wd * p[i] : g[i];
        v[i] = v[i] * a + ac * d * d;
        S den;
        if (centered) {
            grad_avg[i] += ac * (d - grad_avg[i]);
            den = std::sqrt(v[i] - grad_avg[i] * grad_avg[i]) + e;
        } else {
            den = std::sqrt(v[i]) + e;
        }
        if (momentum > 0) {
            buf[i] = buf[i] * mom + d / den;
            p[i] -= rate * buf[i];
        } else {
            p[i] -= rate * (d / den);
        }
    }
}

template <class S>
void adagrad_update(S* p, const S* g, S* sum, std::size_t n, double lr, double lr_decay, double weight_decay,
                    double eps, long step) {
    const S clr = S(lr / (1.0 + double(step - 1) * lr_decay)), wd = S(weight_decay), e = S(eps);
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
        const S d = weight_decay != 0 ? g[i] + wd * p[i] : g[i];
        sum[i] += d * d;
        p[i] -= clr * (d / (std::sqrt(sum[i]) + e));
    }
}

template <class S>
double sum_of_squares(const S* g, std::size_t n) {
    double total = 0;
#pragma omp simd reduction(+ : total)
    for (std::size_t i = 0; i < n; ++i) total += double(g[i]) * double(g[i]);
    return total;
}

template <class S>
void scale(S* g, std::size_t n, double factor) {
    const S f = S(factor);
    for (std::size_t i = 0; i < n; ++i) g[i] *= f;
}

template <class S>
void clip_values(S* g, std::size_t n, double limit) {
    const S hi = S(limit);
    for (std::size_t i = 0; i < n; ++i) g[i] = std::min(std::max(g[i], -hi), hi);
}

template <class S>
double add_l1_l2(S* g, const S* p, std::size_t n, double l1, double l2) {
    double penalty = 0;
    const S a = S(l1), b = S(2.0 * l2);
    for (std::size_t i = 0; i < n; ++i) {
        penalty += l1 * std::fabs(double(p[i])) + l2 * double(p[i]) * double(p[i]);
        const S sign = p[i] > S(0) ? S(1) : (p[i] < S(0) ? S(-1) : S(0));
        g[i] += a * sign + b * p[i];
    }
    return penalty;
}

#define RNNKIT_INSTANTIATE(S)                                                                                   \
    template void sgd_update<S>(S*, const S*, S*, std::size_t, double, double, double, double, bool, bool);     \
    template void adam_update<S>(S*, const S*, S*, S*, std::size_t, double, double, double, double, double,     \
                                 bool, long);                                                                   \
    template void rmsprop_update<S>(S*, const S*, S*, S*, S*, std::size_t, double, double, double, double,      \
                                    double, bool);                                                              \
    template void adagrad_update<S>(S*, const S*, S*, std::size_t, double, double, double, double, long);       \
    template double sum_of_squares<S>(const S*, std::size_t);                                                   \
    template void scale<S>(S*, std::size_t, double);                                                            \
    template void clip_values<S>(S*, std::size_t, double);                                                      \
    template double add_l1_l2<S>(S*, const S*, std::size_t, double, double);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace v0
}  // namespace rnnkit
