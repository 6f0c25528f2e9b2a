// Feed-forward pieces that sit around recurrent layers: Dense, Embedding, Dropout, LastStep.
// Shape legend and gradient rule: see rnnkit/config.hpp. N = rows (B, or T*B for per-step use),
// O = output features, V = vocabulary size, F = features.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rnnkit {
inline namespace v0 {

enum class Activation { None, ReLU, Tanh, Sigmoid, Softmax };
const char* to_string(Activation activation);       // "none", "relu", "tanh", "sigmoid", "softmax"
Activation parse_activation(const std::string& name);  // the same names; throws std::invalid_argument

// y = act(x W^T + b).   y: [N, O]; x: [N, I]; W: [O, I]; b: [O] or nullptr.
template <class S>
void dense_forward(S* y, const S* x, const S* W, const S* b, int N, int I, int O, Activation act);

// dz = dy * act'(y) (softmax: y * (dy - Σ dy y));  dx = dz W (=);  dW += dz^T x;  db += Σ_rows dz.
// dx: [N, I] or nullptr; dW: [O, I]; db: [O] or nullptr; dy, y: [N, O]; x: [N, I]; W: [O, I].
template <class S>
void dense_backward(S* dx, S* dW, S* db, const S* dy, const S* y, const S* x, const S* W, int N, int I, int O,
                    Activation act);

// y[n] = table[tokens[n]].   y: [N, D]; tokens: [N] in 0..V-1 (else std::invalid_argument); table: [V, D].
template <class S>
void embedding_forward(S* y, const std::int64_t* tokens, const S* table, int N, int V, int D);

// dtable[tokens[n]] += dy[n].
template <class S>
void embedding_backward(S* dtable, const S* dy, const std::int64_t* tokens, int N, int V, int D);

// Inverted dropout: mask ∈ {0, 1/(1-p)} drawn from (seed, counter); y = x * mask.   y, mask, x: [n].
template <class S>
void dropout_forward(S* y, S* mask, const S* x, std::size_t n, double p, std::uint64_t seed, std::uint64_t counter);

// y[b] = x[t_b, b]: the forward features (the first F/D) at each sequence's last valid step
// t_b = lengths[b] - 1 (T - 1 without lengths), the reverse features (the last F/D, when D = 2) at t = 0,
// where a reverse direction ends.   y: [B, F]; x: [T, B, F]; lengths: [B] in 1..T or nullptr.
template <class S>
void last_step_forward(S* y, const S* x, const int* lengths, int T, int B, int F, int directions);

// dx = 0 except dx[t_b, b] = dy[b] (same positions as the forward).   dx: [T, B, F]; dy: [B, F].
template <class S>
void last_step_backward(S* dx, const S* dy, const int* lengths, int T, int B, int F, int directions);

}  // namespace v0
}  // namespace rnnkit
