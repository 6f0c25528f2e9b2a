// Sequence to sequence with attention: an embedding + recurrent encoder (stacked, bidirectional), a bridge from
// its final states to the decoder's initial states, and a decoder cell with attention over the encoder outputs,
// an attentional combine layer and an output projection. Training runs the whole decoder time loop forward and
// backward in C++; decoding runs greedy or batched beam search in C++.
//
// Shape legend: B = sentences, S = source positions, T = target positions, E = embed_size, H = hidden_size,
// D = encoder directions, K = D*H (encoder output features, the attention's keys), V = target vocabulary.
// Token arrays are row-major [B, S] / [B, T] int64; the target holds the output tokens WITHOUT the start token,
// ending with end_id, padded beyond its length.
//
// One decoder step (a context c_t over the encoder outputs k_1..k_S, the decoder state h_t, embedding e):
//   bahdanau:  c_t = attn(h_{t-1}, k);  x_t = [e(y_{t-1}); c_t];   h_t = cell(x_t, h_{t-1})
//   luong_*:   x_t = [e(y_{t-1}); õ_{t-1}];  h_t = cell(x_t, h_{t-1});  c_t = attn(h_t, k)
//   õ_t = tanh(W_c [c_t; h_t]) (combine.weight [H, K + H]);  logits_t = W_out õ_t + b_out
//   without input_feeding, x_t = e(y_{t-1}); without attention, õ_t = h_t and there is no combine layer.
// Bridge: h_0 = tanh(W_bh [h_fwd; h_bwd] + b_bh) from the last encoder layer's final h (and for an LSTM
// c_0 = W_bc [c_fwd; c_bwd] + b_bc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rnnkit/attention.hpp"
#include "rnnkit/config.hpp"

namespace rnnkit {
inline namespace v0 {

struct Seq2SeqConfig {
    int src_vocab = 0;
    int tgt_vocab = 0;
    int embed_size = 64;
    int hidden_size = 128;          // per direction in the encoder; the decoder's size
    CellKind cell = CellKind::LSTM;  // LSTM or GRU, encoder and decoder
    int encoder_layers = 1;
    bool bidirectional_encoder = true;
    bool attention = true;          // false: the decoder sees the source only through the bridge
    AttentionKind attention_kind = AttentionKind::Bahdanau;
    int attention_units = 0;        // bahdanau / luong_concat: U (0: hidden_size)
    bool input_feeding = true;
    std::int64_t pad_id = 0, start_id = 1, end_id = 2;
    std::uint64_t seed = 0;
    // Sequence regression: continuous features instead of token ids (0: tokens). src_features > 0: the source is
    // [B, S, src_features] values fed to the encoder directly (no src_embedding; src_vocab 0). tgt_features > 0:
    // the target is [B, T, tgt_features] values, the decoder's input is the previous step's value (zeros first),
    // output.weight is [tgt_features, H] and the loss the mean squared error over the valid steps (no
    // tgt_embedding; tgt_vocab 0; pad/start/end ids unused there).
    int src_features = 0;
    int tgt_features = 0;
};

// Throws std::invalid_argument naming the offending field.
void validate(const Seq2SeqConfig& config);

// The mean loss of a batch over its valid target tokens, their count, and how many the model's argmax got right.
struct BatchLoss {
    double loss = 0;
    std::int64_t tokens = 0;
    std::int64_t correct = 0;
};

template <class S>
struct Decoded {
    // Per sentence: output tokens (end token excluded), the score Σ log p (the end token's included when it was
    // emitted) divided by the GNMT length penalty ((5 + n) / 6)^alpha (n: tokens + the end token), and, when asked
    // for, the attention weights: one row of S per output step (the end token's step included when emitted).
    std::vector<std::vector<std::int64_t>> tokens;
    std::vector<double> scores;
    std::vector<std::vector<S>> attention;
    std::vector<int> ended;  // 1 when the sentence emitted end_id, 0 when max_length cut it
};

// One batch: token ids or values on each side, as the config says. src: [B, S] ids or [B, S, src_features];
// tgt: [B, T] ids or [B, T, tgt_features] (nullptr for decoding); lengths: [B] in 1..S / 1..T or nullptr (all).
template <class S>
struct Seq2SeqBatch {
    int B = 0, Sn = 0, T = 0;
    const std::int64_t* src_tokens = nullptr;
    const S* src_values = nullptr;
    const int* src_lengths = nullptr;
    const std::int64_t* tgt_tokens = nullptr;
    const S* tgt_values = nullptr;
    const int* tgt_lengths = nullptr;
};

template <class S>
class Seq2Seq {
public:
    explicit Seq2Seq(const Seq2SeqConfig& config);
    ~Seq2Seq();
    Seq2Seq(Seq2Seq&&) noexcept;
    Seq2Seq& operator=(Seq2Seq&&) noexcept;

    const Seq2SeqConfig& config() const;
    int num_directions() const { return config().bidirectional_encoder ? 2 : 1; }

    // Every parameter with its name (state-dict order: src_embedding, encoder, bridge, tgt_embedding, decoder,
    // attention, combine, output), torch-style shape, and its data and gradient (views into the owners' slabs).
    struct Param {
        std::string name;
        std::vector<std::int64_t> shape;
        S* data;
        S* grad;
        std::size_t size;
    };
    std::vector<Param> parameters();
    std::size_t num_parameters() const;
    void zero_grad();
    void reset_parameters(std::uint64_t seed);

    // Teacher-forced (ratio teacher_forcing in [0, 1]: per sentence and step t > 0, the gold y_{t-1} with that
    // probability, else the model's argmax at t - 1) mean cross-entropy over the valid target tokens, with
    // label smoothing eps (torch's: (1 - eps) nll + eps mean_v(-log p_v)). backward=true also accumulates every
    // parameter's gradient of that mean. src: [B, S]; src_lengths: [B] in 1..S or nullptr; tgt: [B, T];
    // tgt_lengths: [B] in 1..T or nullptr. Token draws come from (seed, counter); the counter advances per call.
    BatchLoss train_batch(const std::int64_t* src, const int* src_lengths, int Sn, const std::int64_t* tgt,
                          const int* tgt_lengths, int T, int B, double teacher_forcing, double label_smoothing,
                          bool backward);
    // The same for any batch (values on either side). With continuous targets the loss is the mean squared error
    // over the valid (step, feature) entries, `tokens` counts the valid steps and `correct` is 0; label_smoothing
    // must be 0 and teacher forcing feeds the gold previous value or the model's previous output.
    BatchLoss train(const Seq2SeqBatch<S>& batch, double teacher_forcing, double label_smoothing, bool backward);

    // Greedy (beam_width 1 and greedy=true) or beam search over B sentences: at most max_length output tokens
    // (without the end token); pad_id and start_id are never emitted. Beam search keeps beam_width live
    // hypotheses per sentence, takes an end token that ranks within the top beam_width candidates as finished,
    // stops a sentence once it has beam_width finished hypotheses (or at max_length, where the live ones finish
    // cut), and returns the best by length-penalised score.
    Decoded<S> decode(const std::int64_t* src, const int* src_lengths, int Sn, int B, int beam_width, bool greedy,
                      int max_length, double length_penalty, bool keep_attention);
    // The same from a batch's source (ids or values; the target side must be tokens).
    Decoded<S> decode(const Seq2SeqBatch<S>& source, int beam_width, bool greedy, int max_length,
                      double length_penalty, bool keep_attention);
    // Continuous targets: `steps` output vectors per sentence, each step fed the previous output (zeros first).
    // out: [B, steps, tgt_features]; attention: [B, steps, S] or nullptr.
    void generate(S* out, S* attention, const Seq2SeqBatch<S>& source, int steps);

    std::uint64_t rng_counter() const;
    void set_rng_counter(std::uint64_t counter);

    // The architecture as the JSON Python's Seq2Seq.get_config() returns, and back.
    std::string config_json() const;
    static Seq2SeqConfig config_from_json(const std::string& json_text);
    // A model file ({"class": "Seq2Seq", "config": ...} in rnnkit.model) as Python's Seq2Seq.save writes it;
    // float64 files convert. Throws std::invalid_argument for a bad file.
    static Seq2Seq load(const std::string& path);
    void save(const std::string& path) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

extern template class Seq2Seq<float>;
extern template class Seq2Seq<double>;

// The embedded program's model: float32.
using Seq2SeqModel = Seq2Seq<float>;

}  // namespace v0
}  // namespace rnnkit
