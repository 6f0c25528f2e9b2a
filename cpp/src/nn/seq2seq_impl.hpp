// The parts of a Seq2Seq (rnnkit/seq2seq.hpp) shared by training (seq2seq.cpp), decoding (seq2seq_decode.cpp)
// and its file (io/seq2seq_file.cpp): the owners of the parameters and one inference step of the decoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rnnkit/attention.hpp"
#include "rnnkit/recurrent.hpp"
#include "rnnkit/seq2seq.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

// Offsets of the Seq2Seq's own tensors (embeddings, bridge, combine, output) in its slab; 0 size when absent.
struct Seq2SeqLayout {
    struct Entry {
        std::string name;
        std::vector<std::int64_t> shape;
        std::size_t offset = 0, size = 0;
    };
    std::vector<Entry> entries;
    std::size_t src_emb, tgt_emb, bridge_hw, bridge_hb, bridge_cw = 0, bridge_cb = 0, combine = 0, out_w, out_b;
    std::size_t total = 0;
};

}  // namespace detail

template <class S>
struct Seq2Seq<S>::Impl {
    Seq2SeqConfig config;
    Recurrent<S> encoder;
    Recurrent<S> decoder;               // a cell (config.cell): one step per call, recorded steps LIFO
    std::unique_ptr<Attention<S>> attention;
    detail::Seq2SeqLayout layout;
    std::vector<S> params, grads;
    std::uint64_t counter = 0;          // teacher-forcing draws
    std::vector<S> step_x, step_u;      // infer_step's decoder input and combine input, reused between steps

    explicit Impl(const Seq2SeqConfig& c);
    bool src_values() const { return config.src_features > 0; }
    bool tgt_values() const { return config.tgt_features > 0; }
    int Ein() const { return src_values() ? config.src_features : config.embed_size; }  // encoder input features
    int Ed() const { return tgt_values() ? config.tgt_features : config.embed_size; }   // decoder input (previous y)
    int H() const { return config.hidden_size; }
    int D() const { return config.bidirectional_encoder ? 2 : 1; }
    int K() const { return D() * H(); }
    int V() const { return tgt_values() ? config.tgt_features : config.tgt_vocab; }  // output features
    int NS() const { return encoder.num_states(); }  // 2 for an LSTM (h, c), 1 for a GRU
    bool luong() const { return config.attention && config.attention_kind != AttentionKind::Bahdanau; }
    bool bahdanau() const { return config.attention && config.attention_kind == AttentionKind::Bahdanau; }
    // Features fed back into the decoder input besides the embedding: õ_{t-1} (Luong), c_t (Bahdanau), or none.
    int F() const {
        if (!config.attention || !config.input_feeding) return 0;
        return luong() ? H() : K();
    }
    S* p(std::size_t offset) { return params.data() + offset; }
    S* g(std::size_t offset) { return grads.data() + offset; }

    // Encoder over a batch: embeddings, the recurrent stack, keys [B, S, K], prepared keys [B, S, P] and the
    // bridge's decoder states h0 [B, H] (c0 [B, H] for an LSTM). Saves what backward needs when training.
    struct Encoded {
        int B = 0, Sn = 0;
        std::vector<int> lengths;
        std::vector<S> xs;                  // [S, B, Ein] embedded (or given) source, time-major
        std::vector<S> keys, proj;          // [B, S, K], [B, S, P]
        std::vector<S> bridge_in[2];        // [B, D*H] per state (h; c)
        std::vector<S> state0[2];           // [B, H] decoder initial states
    };
    Encoded encode(const Seq2SeqBatch<S>& batch, bool training);

    // One inference step for N rows reading sources rows[n]: from the previous tokens (or values [N, Ed]), feed
    // [N, F] and states (h, c) [N, H], writes the next states, context [N, K], weights [N, S], õ [N, H] and
    // log-probabilities [N, V] (continuous targets: the predicted values).
    void infer_step(const Encoded& enc, const int* rows, int N, const std::int64_t* prev, const S* prev_values,
                    const S* feed, const S* h, const S* c, S* h_next, S* c_next, S* context, S* weights, S* o,
                    S* logp);
};

}  // namespace v0
}  // namespace rnnkit
