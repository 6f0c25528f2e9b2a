// Dense, Embedding, Dropout and LastStep: forward/backward pairs. See rnnkit/layers.hpp.
#include "rnnkit/layers.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/gemm.hpp"
#include "cpu/pointwise.hpp"
#include "cpu/team.hpp"
#include "random.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::gemm;

const char* to_string(Activation activation) {
    switch (activation) {
        case Activation::ReLU: return "relu";
        case Activation::Tanh: return "tanh";
        case Activation::Sigmoid: return "sigmoid";
        case Activation::Softmax: return "softmax";
        default: return "none";
    }
}

Activation parse_activation(const std::string& name) {
    for (Activation a : {Activation::None, Activation::ReLU, Activation::Tanh, Activation::Sigmoid, Activation::Softmax})
        if (name == to_string(a)) return a;
    throw std::invalid_argument("activation: expected 'none', 'relu', 'tanh', 'sigmoid' or 'softmax', got '" + name +
                                "'");
}

template <class S>
void dense_forward(S* y, const S* x, const S* W, const S* b, int N, int I, int O, Activation act) {
    const detail::KernelThreads threads;
    gemm<S>(false, true, N, O, I, S(1), x, I, W, I, S(0), y, O);  // y = x W^T
    for (int n = 0; n < N; ++n) {
        S* row = y + std::size_t(n) * O;
        if (b)
            for (int o = 0; o < O; ++o) row[o] += b[o];
        switch (act) {
            case Activation::None: break;
            case Activation::ReLU: for (int o = 0; o < O; ++o) row[o] = std::max(row[o], S(0)); break;
            case Activation::Tanh:  // the cells' vectorised tanh (float; libm for double)
#pragma omp simd
                for (int o = 0; o < O; ++o) row[o] = detail::tanh_(row[o]);
                break;
            case Activation::Sigmoid:
#pragma omp simd
                for (int o = 0; o < O; ++o) row[o] = detail::sigmoid(row[o]);
                break;
            case Activation::Softmax: {  // softmax(z) = exp(z - max z) / Σ exp(z - max z)
                const S top = *std::max_element(row, row + O);
                S sum = 0;
                for (int o = 0; o < O; ++o) sum += (row[o] = std::exp(row[o] - top));
                for (int o = 0; o < O; ++o) row[o] /= sum;
                break;
            }
        }
    }
}

template <class S>
void dense_backward(S* dx, S* dW, S* db, const S* dy, const S* y, const S* x, const S* W, int N, int I, int O,
                    Activation act) {
    const detail::KernelThreads threads;
    std::vector<S> dz_buffer;
    const S* dz = dy;
    if (act != Activation::None) {
        dz_buffer.resize(std::size_t(N) * O);
        for (int n = 0; n < N; ++n) {
            const S* yr = y + std::size_t(n) * O;
            const S* dyr = dy + std::size_t(n) * O;
            S* dzr = dz_buffer.data() + std::size_t(n) * O;
            switch (act) {
                case Activation::ReLU: for (int o = 0; o < O; ++o) dzr[o] = yr[o] > S(0) ? dyr[o] : S(0); break;
                case Activation::Tanh: for (int o = 0; o < O; ++o) dzr[o] = dyr[o] * (S(1) - yr[o] * yr[o]); break;
                case Activation::Sigmoid: for (int o = 0; o < O; ++o) dzr[o] = dyr[o] * yr[o] * (S(1) - yr[o]); break;
                case Activation::Softmax: {
                    S dot = 0;
                    for (int o = 0; o < O; ++o) dot += dyr[o] * yr[o];
                    for (int o = 0; o < O; ++o) dzr[o] = yr[o] * (dyr[o] - dot);
                    break;
                }
                case Activation::None: break;
            }
        }
        dz = dz_buffer.data();
    }
    if (dx) gemm<S>(false, false, N, I, O, S(1), dz, O, W, I, S(0), dx, I);  // dx = dz W
    gemm<S>(true, false, O, I, N, S(1), dz, O, x, I, S(1), dW, I);            // dW += dz^T x
    if (db) detail::add_column_sums(db, dz, N, O, O);
}

template <class S>
void embedding_forward(S* y, const std::int64_t* tokens, const S* table, int N, int V, int D) {
    for (int n = 0; n < N; ++n) {
        const std::int64_t k = tokens[n];
        if (k < 0 || k >= V)
            throw std::invalid_argument("tokens: expected values in 0.." + std::to_string(V - 1) + ", got " +
                                        std::to_string(k) + " at index " + std::to_string(n));
        std::memcpy(y + std::size_t(n) * D, table + std::size_t(k) * D, sizeof(S) * std::size_t(D));
    }
}

template <class S>
void embedding_backward(S* dtable, const S* dy, const std::int64_t* tokens, int N, int V, int D) {
    for (int n = 0; n < N; ++n) {
        const std::int64_t k = tokens[n];
        if (k < 0 || k >= V) throw std::invalid_argument("tokens: value out of range in embedding_backward");
        S* row = dtable + std::size_t(k) * D;
        const S* d = dy + std::size_t(n) * D;
        for (int j = 0; j < D; ++j) row[j] += d[j];
    }
}

template <class S>
void dropout_forward(S* y, S* mask, const S* x, std::size_t n, double p, std::uint64_t seed, std::uint64_t counter) {
    if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument("p: expected a probability in [0, 1)");
    std::mt19937_64 engine(detail::mix(seed, counter));
    detail::draw_dropout_mask(mask, n, p, engine);
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * mask[i];
}

namespace {
// Time index LastStep reads for batch row b and feature column f.
inline int last_time(const int* lengths, int T, int b, int f, int F, int directions) {
    const bool reverse_feature = directions == 2 && f >= F / 2;
    if (reverse_feature) return 0;
    return lengths ? lengths[b] - 1 : T - 1;
}
void check_last_step(const int* lengths, int T, int B, int F, int directions) {
    if (directions != 1 && directions != 2) throw std::invalid_argument("directions: expected 1 or 2");
    if (F % directions) throw std::invalid_argument("features: not divisible by the number of directions");
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > T)
                throw std::invalid_argument("lengths: expected values in 1.." + std::to_string(T));
}
}  // namespace

template <class S>
void last_step_forward(S* y, const S* x, const int* lengths, int T, int B, int F, int directions) {
    check_last_step(lengths, T, B, F, directions);
    for (int b = 0; b < B; ++b)
        for (int f = 0; f < F; ++f) {
            const int t = last_time(lengths, T, b, f, F, directions);
            y[std::size_t(b) * F + f] = x[(std::size_t(t) * B + b) * F + f];
        }
}

template <class S>
void last_step_backward(S* dx, const S* dy, const int* lengths, int T, int B, int F, int directions) {
    check_last_step(lengths, T, B, F, directions);
    std::fill(dx, dx + std::size_t(T) * B * F, S(0));
    for (int b = 0; b < B; ++b)
        for (int f = 0; f < F; ++f) {
            const int t = last_time(lengths, T, b, f, F, directions);
            dx[(std::size_t(t) * B + b) * F + f] = dy[std::size_t(b) * F + f];
        }
}

#define RNNKIT_INSTANTIATE(S)                                                                                   \
    template void dense_forward<S>(S*, const S*, const S*, const S*, int, int, int, Activation);                \
    template void dense_backward<S>(S*, S*, S*, const S*, const S*, const S*, const S*, int, int, int,          \
                                    Activation);                                                                \
    template void embedding_forward<S>(S*, const std::int64_t*, const S*, int, int, int);                       \
    template void embedding_backward<S>(S*, const S*, const std::int64_t*, int, int, int);                      \
    template void dropout_forward<S>(S*, S*, const S*, std::size_t, double, std::uint64_t, std::uint64_t);      \
    template void last_step_forward<S>(S*, const S*, const int*, int, int, int, int);                           \
    template void last_step_backward<S>(S*, const S*, const int*, int, int, int, int);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace v0
}  // namespace rnnkit
