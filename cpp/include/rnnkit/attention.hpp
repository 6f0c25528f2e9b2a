// Attention over a source sequence: Bahdanau's additive score and Luong's dot, general and concat scores, with a
// source mask from the lengths (positions s >= length get exactly zero weight).
// Shape legend: N = query rows, B = sources, S = source positions, Q = query features, K = key features,
// U = attention units. Kernel-level calls put outputs first; gradients accumulate (+=) unless marked (=).
//
//   bahdanau       e_s = v . tanh(W_q q + W_k k_s + b)        weight_query [U, Q], weight_key [U, K], bias [U],
//                                                              weight_score [U] (v)
//   luong_dot      e_s = q . k_s                               (Q == K, no parameters)
//   luong_general  e_s = q . (W k_s)                           weight [Q, K]
//   luong_concat   e_s = v . tanh(W [q; k_s])                  weight [U, Q + K], weight_score [U] (v)
//   a = softmax over s < length of e (a_s = 0 beyond; all zero for an empty source), context = Σ_s a_s k_s
//
// The part of the score that depends on the keys only (W_k k_s + b, W k_s, W[:, Q:] k_s) is prepared once per
// source ("proj", [B, S, P]) and reused by every query row: a decoder queries the same source at every step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rnnkit/config.hpp"

namespace rnnkit {
inline namespace v0 {

enum class AttentionKind : int { Bahdanau = 0, LuongDot = 1, LuongGeneral = 2, LuongConcat = 3 };
const char* to_string(AttentionKind kind);  // "bahdanau", "luong_dot", "luong_general", "luong_concat"
AttentionKind parse_attention(const std::string& name);  // the same names; throws std::invalid_argument

template <class S>
class Attention {
public:
    // units: U for the additive scores (bahdanau, luong_concat; 0 means query_size), ignored otherwise.
    // Throws std::invalid_argument for non-positive sizes or luong_dot with query_size != key_size.
    Attention(AttentionKind kind, int query_size, int key_size, int units = 0, std::uint64_t seed = 0);

    AttentionKind kind() const { return kind_; }
    int query_size() const { return Q_; }
    int key_size() const { return K_; }
    int units() const { return U_; }        // 0 for luong_dot and luong_general
    int proj_size() const { return P_; }    // features per prepared source position: U, Q (general) or 0 (dot)

    const std::vector<ParamInfo>& parameters() const { return layout_; }
    std::size_t num_parameters() const { return params_.size(); }
    S* param_data() { return params_.data(); }
    const S* param_data() const { return params_.data(); }
    S* grad_data() { return grads_.data(); }
    const S* grad_data() const { return grads_.data(); }
    void zero_grad();
    // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per tensor (fan_in: its columns; bias: K; weight_score: U).
    void reset_parameters(std::uint64_t seed);

    // proj = the keys' part of the score.   proj: [B, S, P] (nothing for dot); keys: [B, S, K].
    void prepare(S* proj, const S* keys, int B, int Sn) const;
    // context: [N, K]; weights: [N, S]; query: [N, Q]; keys: [B, S, K]; proj: [B, S, P];
    // lengths: [B] in 0..S or nullptr (all S); rows: [N] in 0..B-1, the source each query row reads, or nullptr
    // (row n reads source n, N == B).
    void forward(S* context, S* weights, const S* query, const S* keys, const S* proj, const int* lengths,
                 const int* rows, int N, int Sn) const;
    // From dcontext [N, K] and dweights [N, S] (nullptr: zeros) and the forward's weights: dquery [N, Q] (=, may be
    // nullptr), dkeys [B, S, K] (+=), dproj [B, S, P] (+=), parameter gradients (+=). Rows sharing a source run
    // serially; with rows == nullptr they run in parallel.
    void backward(S* dquery, S* dkeys, S* dproj, const S* dcontext, const S* dweights, const S* query,
                  const S* weights, const S* keys, const S* proj, const int* lengths, const int* rows, int N,
                  int Sn);
    // Through prepare: dkeys [B, S, K] (+=) and parameter gradients (+=) from dproj [B, S, P].
    void prepare_backward(S* dkeys, const S* dproj, const S* keys, int B, int Sn);

private:
    AttentionKind kind_;
    int Q_, K_, U_, P_;
    std::vector<ParamInfo> layout_;
    std::vector<S> params_, grads_;
    // slab offsets + 1 (0: absent) of W_q (or the concat W), W_k (or general W), b, v
    std::size_t wq_ = 0, wk_ = 0, b_ = 0, v_ = 0;
    bool additive() const { return kind_ == AttentionKind::Bahdanau || kind_ == AttentionKind::LuongConcat; }
    int ldwq() const { return kind_ == AttentionKind::LuongConcat ? Q_ + K_ : Q_; }  // row stride of W_q
    int ldwk() const { return kind_ == AttentionKind::LuongConcat ? Q_ + K_ : K_; }  // of W_k (general: W)
};

extern template class Attention<float>;
extern template class Attention<double>;

}  // namespace v0
}  // namespace rnnkit
