// Seq2Seq: parameters, the encoder and bridge, and training (the decoder time loop forward and backward).
// See rnnkit/seq2seq.hpp for the model's equations.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "cpu/gemm.hpp"
#include "cpu/team.hpp"
#include "nn/seq2seq_impl.hpp"
#include "random.hpp"
#include "rnnkit/layers.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::gemm;
using detail::mix;
using detail::uniform01;

void validate(const Seq2SeqConfig& c) {
    auto positive = [](const char* name, long v) {
        if (v < 1) throw std::invalid_argument(std::string(name) + ": expected a positive integer, got " + std::to_string(v));
    };
    if (c.src_features < 0 || c.tgt_features < 0)
        throw std::invalid_argument("src_features, tgt_features: expected 0 (token ids) or a positive count");
    if (c.src_features == 0) positive("src_vocab", c.src_vocab);
    else if (c.src_vocab != 0) throw std::invalid_argument("src_vocab: expected 0 (none) with src_features > 0");
    if (c.tgt_features == 0) positive("tgt_vocab", c.tgt_vocab);
    else if (c.tgt_vocab != 0) throw std::invalid_argument("tgt_vocab: expected 0 (none) with tgt_features > 0");
    positive("embed_size", c.embed_size);
    positive("hidden_size", c.hidden_size);
    positive("encoder_layers", c.encoder_layers);
    if (c.cell != CellKind::LSTM && c.cell != CellKind::GRU)
        throw std::invalid_argument("cell: expected 'lstm' or 'gru'");
    if (c.attention_units < 0)
        throw std::invalid_argument("attention_units: expected a positive integer or 0, got " + std::to_string(c.attention_units));
    auto token = [](const char* name, std::int64_t id, int vocab, const char* which) {
        if (id < 0 || id >= vocab)
            throw std::invalid_argument(std::string(name) + ": expected an id in 0.." + std::to_string(vocab - 1) + " (" +
                                        which + "), got " + std::to_string(id));
    };
    if (c.src_features == 0) token("pad_id", c.pad_id, c.src_vocab, "src_vocab");
    if (c.tgt_features == 0) {
        token("pad_id", c.pad_id, c.tgt_vocab, "tgt_vocab");
        token("start_id", c.start_id, c.tgt_vocab, "tgt_vocab");
        token("end_id", c.end_id, c.tgt_vocab, "tgt_vocab");
    }
    if (c.tgt_features == 0 && (c.pad_id == c.start_id || c.pad_id == c.end_id || c.start_id == c.end_id))
        throw std::invalid_argument("pad_id, start_id, end_id: expected three different ids, got " +
                                    std::to_string(c.pad_id) + ", " + std::to_string(c.start_id) + ", " +
                                    std::to_string(c.end_id));
    if (c.attention && c.attention_kind == AttentionKind::LuongDot && c.bidirectional_encoder)
        throw std::invalid_argument("attention: 'luong_dot' scores h . k and needs keys of the decoder's size: use "
                                    "bidirectional_encoder=False or another attention");
}

namespace {

LayerConfig encoder_config(const Seq2SeqConfig& c) {
    LayerConfig l;
    l.kind = c.cell;
    l.input_size = c.src_features > 0 ? c.src_features : c.embed_size;
    l.hidden_size = c.hidden_size;
    l.num_layers = c.encoder_layers;
    l.bidirectional = c.bidirectional_encoder;
    l.seed = mix(c.seed, 1);
    return l;
}

LayerConfig decoder_config(const Seq2SeqConfig& c, int feed) {
    LayerConfig l;
    l.kind = c.cell;
    l.input_size = (c.tgt_features > 0 ? c.tgt_features : c.embed_size) + feed;
    l.hidden_size = c.hidden_size;
    l.cell = true;
    l.seed = mix(c.seed, 2);
    return l;
}

int feed_size(const Seq2SeqConfig& c) {
    if (!c.attention || !c.input_feeding) return 0;
    return c.attention_kind == AttentionKind::Bahdanau ? (c.bidirectional_encoder ? 2 : 1) * c.hidden_size
                                                       : c.hidden_size;
}

const Seq2SeqConfig& checked(const Seq2SeqConfig& c) {
    validate(c);
    return c;
}

}  // namespace

template <class S>
Seq2Seq<S>::Impl::Impl(const Seq2SeqConfig& c)
    : config(checked(c)), encoder(encoder_config(c)), decoder(decoder_config(c, feed_size(c))) {
    if (c.attention)
        attention.reset(new Attention<S>(c.attention_kind, c.hidden_size, K(), c.attention_units, mix(c.seed, 3)));
    auto& L = layout;
    auto add = [&L](const std::string& name, std::vector<std::int64_t> shape) {
        detail::Seq2SeqLayout::Entry e;
        e.name = name;
        e.shape = shape;
        e.offset = L.total;
        e.size = 1;
        for (auto s : shape) e.size *= std::size_t(s);
        L.total += e.size;
        L.entries.push_back(e);
        return e.offset;
    };
    const int E = c.embed_size, H = c.hidden_size;
    if (!src_values()) L.src_emb = add("src_embedding.weight", {c.src_vocab, E});
    L.bridge_hw = add("bridge_h.weight", {H, K()});
    L.bridge_hb = add("bridge_h.bias", {H});
    if (NS() > 1) {
        L.bridge_cw = add("bridge_c.weight", {H, K()});
        L.bridge_cb = add("bridge_c.bias", {H});
    }
    if (!tgt_values()) L.tgt_emb = add("tgt_embedding.weight", {c.tgt_vocab, E});
    if (c.attention) L.combine = add("combine.weight", {H, K() + H});
    L.out_w = add("output.weight", {V(), H});
    L.out_b = add("output.bias", {V()});
    params.assign(L.total, S(0));
    grads.assign(L.total, S(0));
}

template <class S>
Seq2Seq<S>::Seq2Seq(const Seq2SeqConfig& config) : impl_(new Impl(config)) {
    reset_parameters(config.seed);
}
template <class S>
Seq2Seq<S>::~Seq2Seq() = default;
template <class S>
Seq2Seq<S>::Seq2Seq(Seq2Seq&&) noexcept = default;
template <class S>
Seq2Seq<S>& Seq2Seq<S>::operator=(Seq2Seq&&) noexcept = default;

template <class S>
const Seq2SeqConfig& Seq2Seq<S>::config() const {
    return impl_->config;
}

template <class S>
void Seq2Seq<S>::reset_parameters(std::uint64_t seed) {
    Impl& m = *impl_;
    m.encoder.reset_parameters(mix(seed, 1));
    m.decoder.reset_parameters(mix(seed, 2));
    if (m.attention) m.attention->reset_parameters(mix(seed, 3));
    // Embeddings N(0, 1) (torch.nn.Embedding); dense layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.nn.Linear).
    std::mt19937_64 engine(mix(seed, 4));
    auto normal = [](std::mt19937_64& e) {  // Box-Muller on uniform01: the same numbers on every platform
        const double u1 = 1.0 - uniform01(e), u2 = uniform01(e);
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    };
    for (const auto& e : m.layout.entries) {
        S* p = m.params.data() + e.offset;
        if (e.name.find("embedding") != std::string::npos) {
            for (std::size_t j = 0; j < e.size; ++j) p[j] = S(normal(engine));
            continue;
        }
        const std::string owner = e.name.substr(0, e.name.find('.'));
        const auto& weight = *std::find_if(m.layout.entries.begin(), m.layout.entries.end(),
                                           [&](const auto& w) { return w.name == owner + ".weight"; });
        const double k = 1.0 / std::sqrt(double(weight.shape[1]));
        for (std::size_t j = 0; j < e.size; ++j) p[j] = S(-k + 2.0 * k * uniform01(engine));
    }
}

template <class S>
std::vector<typename Seq2Seq<S>::Param> Seq2Seq<S>::parameters() {
    Impl& m = *impl_;
    std::vector<Param> out;
    auto own = [&](const std::string& prefix) {
        for (const auto& e : m.layout.entries)
            if (e.name.rfind(prefix, 0) == 0)
                out.push_back({e.name, e.shape, m.params.data() + e.offset, m.grads.data() + e.offset, e.size});
    };
    auto layer = [&](const std::string& prefix, const std::vector<ParamInfo>& infos, S* data, S* grad) {
        for (const ParamInfo& p : infos)
            out.push_back({prefix + p.name, p.shape, data + p.offset, grad + p.offset, p.size});
    };
    own("src_embedding");
    layer("encoder.", m.encoder.parameters(), m.encoder.param_data(), m.encoder.grad_data());
    own("bridge");
    own("tgt_embedding");
    layer("decoder.", m.decoder.parameters(), m.decoder.param_data(), m.decoder.grad_data());
    if (m.attention)
        layer("attention.", m.attention->parameters(), m.attention->param_data(), m.attention->grad_data());
    own("combine");
    own("output");
    return out;
}

template <class S>
std::size_t Seq2Seq<S>::num_parameters() const {
    const Impl& m = *impl_;
    return m.params.size() + m.encoder.num_parameters() + m.decoder.num_parameters() +
           (m.attention ? m.attention->num_parameters() : 0);
}

template <class S>
void Seq2Seq<S>::zero_grad() {
    Impl& m = *impl_;
    std::fill(m.grads.begin(), m.grads.end(), S(0));
    m.encoder.zero_grad();
    m.decoder.zero_grad();
    if (m.attention) m.attention->zero_grad();
}

template <class S>
std::uint64_t Seq2Seq<S>::rng_counter() const {
    return impl_->counter;
}
template <class S>
void Seq2Seq<S>::set_rng_counter(std::uint64_t counter) {
    impl_->counter = counter;
}

namespace {

void check_tokens(const char* name, const std::int64_t* ids, std::size_t n, int vocab) {
    for (std::size_t i = 0; i < n; ++i)
        if (ids[i] < 0 || ids[i] >= vocab)
            throw std::invalid_argument(std::string(name) + ": expected token ids in 0.." + std::to_string(vocab - 1) +
                                        ", got " + std::to_string(ids[i]) + " at flat index " + std::to_string(i));
}

std::vector<int> checked_lengths(const char* name, const int* lengths, int B, int T) {
    std::vector<int> out(B, T);
    if (!lengths) return out;
    for (int b = 0; b < B; ++b) {
        if (lengths[b] < 1 || lengths[b] > T)
            throw std::invalid_argument(std::string(name) + ": expected values in 1.." + std::to_string(T) + ", got " +
                                        std::to_string(lengths[b]) + " at index " + std::to_string(b));
        out[b] = lengths[b];
    }
    return out;
}

}  // namespace

template <class S>
typename Seq2Seq<S>::Impl::Encoded Seq2Seq<S>::Impl::encode(const Seq2SeqBatch<S>& batch, bool training) {
    const int B = batch.B, Sn = batch.Sn;
    if (B < 1 || Sn < 1)
        throw std::invalid_argument("src: expected at least one sentence of at least one step, got shape (" +
                                    std::to_string(B) + ", " + std::to_string(Sn) + ")");
    if (src_values() ? !batch.src_values : !batch.src_tokens)
        throw std::invalid_argument(src_values() ? "src: this model takes values [B, S, src_features], not token ids"
                                                 : "src: this model takes token ids [B, S], not values");
    if (!src_values()) check_tokens("src", batch.src_tokens, std::size_t(B) * Sn, config.src_vocab);
    Encoded enc;
    enc.B = B;
    enc.Sn = Sn;
    enc.lengths = checked_lengths("src_lengths", batch.src_lengths, B, Sn);
    const int E = Ein(), H = this->H(), D = this->D(), K = this->K(), L = config.encoder_layers;
    // xs[s, b] = src_embedding[src[b, s]], or the given values src[b, s, :]
    enc.xs.resize(std::size_t(Sn) * B * E);
    for (int s = 0; s < Sn; ++s)
        for (int b = 0; b < B; ++b) {
            const S* row = src_values() ? batch.src_values + (std::size_t(b) * Sn + s) * E
                                        : p(layout.src_emb) + std::size_t(batch.src_tokens[std::size_t(b) * Sn + s]) * E;
            std::memcpy(enc.xs.data() + (std::size_t(s) * B + b) * E, row, sizeof(S) * E);
        }
    std::vector<S> ys(std::size_t(Sn) * B * K);
    std::vector<S> finals[2];
    S* fin[kMaxStates] = {};
    for (int k = 0; k < NS(); ++k) {
        finals[k].resize(std::size_t(L) * D * B * H);
        fin[k] = finals[k].data();
    }
    encoder.forward(ys.data(), fin, enc.xs.data(), nullptr, enc.lengths.data(), Sn, B, training);
    enc.keys.resize(std::size_t(B) * Sn * K);
    for (int s = 0; s < Sn; ++s)
        for (int b = 0; b < B; ++b)
            std::memcpy(enc.keys.data() + (std::size_t(b) * Sn + s) * K, ys.data() + (std::size_t(s) * B + b) * K,
                        sizeof(S) * K);
    if (attention) {
        enc.proj.resize(std::size_t(B) * Sn * attention->proj_size());
        attention->prepare(enc.proj.data(), enc.keys.data(), B, Sn);
    }
    // Bridge: h0 = tanh(W_bh [h_fwd; h_bwd] + b_bh);  c0 = W_bc [c_fwd; c_bwd] + b_bc
    for (int k = 0; k < NS(); ++k) {
        enc.bridge_in[k].resize(std::size_t(B) * K);
        for (int d = 0; d < D; ++d)
            for (int b = 0; b < B; ++b)
                std::memcpy(enc.bridge_in[k].data() + std::size_t(b) * K + d * H,
                            finals[k].data() + ((std::size_t(L - 1) * D + d) * B + b) * H, sizeof(S) * H);
        enc.state0[k].resize(std::size_t(B) * H);
        if (k == 0)
            dense_forward<S>(enc.state0[0].data(), enc.bridge_in[0].data(), p(layout.bridge_hw), p(layout.bridge_hb), B, K,
                             H, Activation::Tanh);
        else
            dense_forward<S>(enc.state0[1].data(), enc.bridge_in[1].data(), p(layout.bridge_cw), p(layout.bridge_cb), B, K,
                             H, Activation::None);
    }
    return enc;
}

template <class S>
void Seq2Seq<S>::Impl::infer_step(const Encoded& enc, const int* rows, int N, const std::int64_t* prev,
                                  const S* prev_values, const S* feed, const S* h, const S* c, S* h_next, S* c_next,
                                  S* context, S* weights, S* o, S* logp) {
    const int E = Ed(), H = this->H(), K = this->K(), F = this->F(), V = this->V(), X = E + F;
    std::vector<S>& x = step_x;  // kept between steps: no fresh pages per step
    std::vector<S>& u = step_u;
    x.resize(std::size_t(N) * X);
    for (int n = 0; n < N; ++n)
        std::memcpy(x.data() + std::size_t(n) * X,
                    tgt_values() ? prev_values + std::size_t(n) * E : p(layout.tgt_emb) + std::size_t(prev[n]) * E,
                    sizeof(S) * E);
    if (bahdanau()) {
        attention->forward(context, weights, h, enc.keys.data(), enc.proj.data(), enc.lengths.data(), rows, N, enc.Sn);
        if (F)
            for (int n = 0; n < N; ++n) std::memcpy(x.data() + std::size_t(n) * X + E, context + std::size_t(n) * K, sizeof(S) * K);
    } else if (F) {
        for (int n = 0; n < N; ++n) std::memcpy(x.data() + std::size_t(n) * X + E, feed + std::size_t(n) * F, sizeof(S) * F);
    }
    const S* s0[kMaxStates] = {h, c};
    S* sn[kMaxStates] = {nullptr, c_next};
    decoder.forward(h_next, sn, x.data(), s0, nullptr, 1, N, false);
    if (luong())
        attention->forward(context, weights, h_next, enc.keys.data(), enc.proj.data(), enc.lengths.data(), rows, N,
                           enc.Sn);
    if (config.attention) {  // õ = tanh(W_c [c; h])
        u.resize(std::size_t(N) * (K + H));
        for (int n = 0; n < N; ++n) {
            std::memcpy(u.data() + std::size_t(n) * (K + H), context + std::size_t(n) * K, sizeof(S) * K);
            std::memcpy(u.data() + std::size_t(n) * (K + H) + K, h_next + std::size_t(n) * H, sizeof(S) * H);
        }
        dense_forward<S>(o, u.data(), p(layout.combine), nullptr, N, K + H, H, Activation::Tanh);
    } else {
        std::memcpy(o, h_next, sizeof(S) * std::size_t(N) * H);
    }
    // log p = logits - logsumexp(logits) (continuous targets: the outputs themselves)
    dense_forward<S>(logp, o, p(layout.out_w), p(layout.out_b), N, H, V, Activation::None);
    for (int n = 0; n < N && !tgt_values(); ++n) {
        S* row = logp + std::size_t(n) * V;
        const S top = *std::max_element(row, row + V);
        double sum = 0;
        for (int v = 0; v < V; ++v) sum += std::exp(double(row[v] - top));
        const S lse = top + S(std::log(sum));
        for (int v = 0; v < V; ++v) row[v] -= lse;
    }
}

template <class S>
BatchLoss Seq2Seq<S>::train_batch(const std::int64_t* src, const int* src_lengths, int Sn, const std::int64_t* tgt,
                                  const int* tgt_lengths, int T, int B, double teacher_forcing,
                                  double label_smoothing, bool backward) {
    const detail::KernelThreads threads;
    Seq2SeqBatch<S> batch;
    batch.B = B;
    batch.Sn = Sn;
    batch.T = T;
    batch.src_tokens = src;
    batch.src_lengths = src_lengths;
    batch.tgt_tokens = tgt;
    batch.tgt_lengths = tgt_lengths;
    return train(batch, teacher_forcing, label_smoothing, backward);
}

template <class S>
BatchLoss Seq2Seq<S>::train(const Seq2SeqBatch<S>& batch, double teacher_forcing, double label_smoothing,
                            bool backward) {
    const detail::KernelThreads threads;
    Impl& m = *impl_;
    const int B = batch.B, Sn = batch.Sn, T = batch.T;
    const std::int64_t* tgt = batch.tgt_tokens;
    const S* tgt_v = batch.tgt_values;
    const bool values = m.tgt_values();
    if (values ? !tgt_v : !tgt)
        throw std::invalid_argument(values ? "tgt: this model takes values [B, T, tgt_features], not token ids"
                                           : "tgt: this model takes token ids [B, T], not values");
    if (values && label_smoothing != 0.0)
        throw std::invalid_argument("label_smoothing: a model with continuous targets has no classes to smooth over");
    if (!(teacher_forcing >= 0.0 && teacher_forcing <= 1.0))
        throw std::invalid_argument("teacher_forcing: expected a ratio in [0, 1], got " + std::to_string(teacher_forcing));
    if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
        throw std::invalid_argument("label_smoothing: expected a value in [0, 1), got " + std::to_string(label_smoothing));
    if (T < 1) throw std::invalid_argument("tgt: expected at least one target position");
    if (!values) check_tokens("tgt", tgt, std::size_t(B) * T, m.V());
    const std::vector<int> tlen = checked_lengths("tgt_lengths", batch.tgt_lengths, B, T);
    m.encoder.clear_tape();
    m.decoder.clear_tape();
    struct TapeGuard {  // an exception midway leaves no half-consumed records behind
        Impl& m;
        ~TapeGuard() { m.encoder.clear_tape(); m.decoder.clear_tape(); }
    } guard{m};
    typename Impl::Encoded enc = m.encode(batch, backward);
    const int E = m.Ed(), H = m.H(), K = m.K(), F = m.F(), V = m.V(), X = E + F, NS = m.NS();
    const std::size_t BH = std::size_t(B) * H;
    std::int64_t tokens = 0;
    for (int b = 0; b < B; ++b) tokens += tlen[b];

    // The decoder loop, forward. Saved per step: the input tokens, h_t (hs[t + 1]; hs[0] = h0), context, weights
    // and õ, and the loss gradient with respect to õ.
    std::vector<std::int64_t> tok(std::size_t(T) * B);
    std::vector<S> hs((std::size_t(T) + 1) * BH), c_cur, c_next, ctx, att, o(std::size_t(T) * BH), dO;
    std::memcpy(hs.data(), enc.state0[0].data(), sizeof(S) * BH);
    if (NS > 1) {
        c_cur = enc.state0[1];
        c_next.resize(BH);
    }
    if (m.attention) {
        ctx.resize(std::size_t(T) * B * K);
        att.resize(std::size_t(T) * B * Sn);
    }
    if (backward) dO.assign(std::size_t(T) * BH, S(0));
    std::vector<S> x(std::size_t(B) * X), u, logits(std::size_t(B) * V), dlogits(std::size_t(B) * V);
    std::vector<std::int64_t> pred(B, m.config.start_id);
    std::vector<S> pred_v(values ? std::size_t(B) * V : 0, S(0));  // continuous: the previous step's outputs
    std::mt19937_64 engine(mix(m.config.seed ^ 0x7eac4e5ULL, ++m.counter));
    const S* temb = values ? nullptr : m.p(m.layout.tgt_emb);
    const S eps = S(label_smoothing);
    double total = 0;
    std::int64_t correct = 0;
    for (int t = 0; t < T; ++t) {
        std::int64_t* tk = tok.data() + std::size_t(t) * B;
        for (int b = 0; b < B; ++b) {
            const bool gold = t > 0 && (teacher_forcing >= 1.0 || uniform01(engine) < teacher_forcing);
            S* xb = x.data() + std::size_t(b) * X;
            if (values) {  // y_{t-1}: zeros first, then the gold value or the model's previous output
                if (t == 0) std::fill(xb, xb + E, S(0));
                else std::memcpy(xb, gold ? tgt_v + (std::size_t(b) * T + t - 1) * E : pred_v.data() + std::size_t(b) * E,
                                 sizeof(S) * E);
                continue;
            }
            tk[b] = t == 0 ? m.config.start_id : gold ? tgt[std::size_t(b) * T + t - 1] : pred[b];
            std::memcpy(xb, temb + std::size_t(tk[b]) * E, sizeof(S) * E);
        }
        S* h_prev = hs.data() + std::size_t(t) * BH;
        S* h_t = h_prev + BH;
        S* ctx_t = m.attention ? ctx.data() + std::size_t(t) * B * K : nullptr;
        S* att_t = m.attention ? att.data() + std::size_t(t) * B * Sn : nullptr;
        S* o_t = o.data() + std::size_t(t) * BH;
        if (m.bahdanau()) {
            m.attention->forward(ctx_t, att_t, h_prev, enc.keys.data(), enc.proj.data(), enc.lengths.data(), nullptr, B, Sn);
            if (F)
                for (int b = 0; b < B; ++b) std::memcpy(x.data() + std::size_t(b) * X + E, ctx_t + std::size_t(b) * K, sizeof(S) * K);
        } else if (F) {  // Luong input feeding: õ_{t-1} (zeros at t = 0)
            for (int b = 0; b < B; ++b)
                if (t == 0) std::fill(x.data() + std::size_t(b) * X + E, x.data() + std::size_t(b) * X + X, S(0));
                else std::memcpy(x.data() + std::size_t(b) * X + E, o_t - BH + std::size_t(b) * H, sizeof(S) * H);
        }
        const S* s0[kMaxStates] = {h_prev, NS > 1 ? c_cur.data() : nullptr};
        S* sn[kMaxStates] = {nullptr, NS > 1 ? c_next.data() : nullptr};
        m.decoder.forward(h_t, sn, x.data(), s0, nullptr, 1, B, backward);
        if (NS > 1) std::swap(c_cur, c_next);
        if (m.luong())
            m.attention->forward(ctx_t, att_t, h_t, enc.keys.data(), enc.proj.data(), enc.lengths.data(), nullptr, B, Sn);
        if (m.attention) {  // õ_t = tanh(W_c [c_t; h_t])
            u.resize(std::size_t(B) * (K + H));
            for (int b = 0; b < B; ++b) {
                std::memcpy(u.data() + std::size_t(b) * (K + H), ctx_t + std::size_t(b) * K, sizeof(S) * K);
                std::memcpy(u.data() + std::size_t(b) * (K + H) + K, h_t + std::size_t(b) * H, sizeof(S) * H);
            }
            dense_forward<S>(o_t, u.data(), m.p(m.layout.combine), nullptr, B, K + H, H, Activation::Tanh);
        } else {
            std::memcpy(o_t, h_t, sizeof(S) * BH);
        }
        // logits, masked cross-entropy with label smoothing, its gradient (p - q) / tokens
        dense_forward<S>(logits.data(), o_t, m.p(m.layout.out_w), m.p(m.layout.out_b), B, H, V, Activation::None);
        for (int b = 0; b < B && values; ++b) {  // squared error, its gradient 2 (z - y) / (steps * features)
            const S* z = logits.data() + std::size_t(b) * V;
            S* dz = dlogits.data() + std::size_t(b) * V;
            std::memcpy(pred_v.data() + std::size_t(b) * V, z, sizeof(S) * V);
            if (t >= tlen[b]) {
                std::fill(dz, dz + V, S(0));
                continue;
            }
            const S* y = tgt_v + (std::size_t(b) * T + t) * V;
            const S scale = S(2.0 / (double(tokens) * V));
            for (int v = 0; v < V; ++v) {
                const double d = double(z[v]) - double(y[v]);
                total += d * d / V;
                dz[v] = S(d) * scale;
            }
        }
        for (int b = 0; b < B && !values; ++b) {
            const S* z = logits.data() + std::size_t(b) * V;
            S* dz = dlogits.data() + std::size_t(b) * V;
            // the next step's sampled input: the argmax over the tokens a decoder may emit
            std::int64_t best = -1;
            for (int v = 0; v < V; ++v)
                if (v != m.config.pad_id && v != m.config.start_id && (best < 0 || z[v] > z[best])) best = v;
            pred[b] = best;
            if (t >= tlen[b]) {
                std::fill(dz, dz + V, S(0));
                continue;
            }
            const std::int64_t y = tgt[std::size_t(b) * T + t];
            const S top = *std::max_element(z, z + V);
            double sum = 0, sum_logp = 0;
            for (int v = 0; v < V; ++v) sum += std::exp(double(z[v] - top));
            const double lse = double(top) + std::log(sum);
            for (int v = 0; v < V; ++v) sum_logp += double(z[v]) - lse;
            total += (1.0 - label_smoothing) * (lse - double(z[y])) - label_smoothing * sum_logp / V;
            if (std::max_element(z, z + V) - z == y) ++correct;
            const S scale = S(1.0 / double(tokens));
            for (int v = 0; v < V; ++v)
                dz[v] = (S(std::exp(double(z[v]) - lse)) - eps / S(V) - (v == y ? S(1) - eps : S(0))) * scale;
        }
        if (backward) {  // dõ_t = dlogits W_out;  dW_out += dlogits^T õ_t;  db_out += Σ dlogits
            gemm<S>(false, false, B, H, V, S(1), dlogits.data(), V, m.p(m.layout.out_w), H, S(0),
                    dO.data() + std::size_t(t) * BH, H);
            gemm<S>(true, false, V, H, B, S(1), dlogits.data(), V, o_t, H, S(1), m.g(m.layout.out_w), H);
            detail::add_column_sums(m.g(m.layout.out_b), dlogits.data(), B, V, V);
        }
    }
    BatchLoss result{total / double(tokens), tokens, correct};
    if (!backward) return result;

    // The decoder loop, backward (the decoder's records pop last step first).
    std::vector<S> dh_next(BH, S(0)), dc_next(NS > 1 ? BH : 0, S(0)), dh_prev(BH), dc_prev(NS > 1 ? BH : 0);
    std::vector<S> dfeed(std::size_t(B) * std::max(F, 1), S(0)), dx(std::size_t(B) * X), du, dctx(std::size_t(B) * K),
        dq(BH), dh_part(BH), dOt(BH);
    std::vector<S> dkeys(enc.keys.size(), S(0)), dproj(enc.proj.size(), S(0));
    S* dtemb = values ? nullptr : m.g(m.layout.tgt_emb);
    for (int t = T - 1; t >= 0; --t) {
        S* h_prev = hs.data() + std::size_t(t) * BH;
        S* h_t = h_prev + BH;
        S* o_t = o.data() + std::size_t(t) * BH;
        const S* ctx_t = m.attention ? ctx.data() + std::size_t(t) * B * K : nullptr;
        const S* att_t = m.attention ? att.data() + std::size_t(t) * B * Sn : nullptr;
        std::memcpy(dOt.data(), dO.data() + std::size_t(t) * BH, sizeof(S) * BH);
        if (m.luong() && F)
            for (std::size_t i = 0; i < BH; ++i) dOt[i] += dfeed[i];
        if (m.attention) {  // through õ_t = tanh(W_c [c_t; h_t])
            u.resize(std::size_t(B) * (K + H));
            du.resize(u.size());
            for (int b = 0; b < B; ++b) {
                std::memcpy(u.data() + std::size_t(b) * (K + H), ctx_t + std::size_t(b) * K, sizeof(S) * K);
                std::memcpy(u.data() + std::size_t(b) * (K + H) + K, h_t + std::size_t(b) * H, sizeof(S) * H);
            }
            dense_backward<S>(du.data(), m.g(m.layout.combine), nullptr, dOt.data(), o_t, u.data(), m.p(m.layout.combine),
                              B, K + H, H, Activation::Tanh);
            for (int b = 0; b < B; ++b) {
                std::memcpy(dctx.data() + std::size_t(b) * K, du.data() + std::size_t(b) * (K + H), sizeof(S) * K);
                std::memcpy(dh_part.data() + std::size_t(b) * H, du.data() + std::size_t(b) * (K + H) + K, sizeof(S) * H);
            }
        } else {
            dh_part = dOt;
        }
        if (m.luong()) {  // c_t = attn(h_t): its gradient joins h_t's
            m.attention->backward(dq.data(), dkeys.data(), dproj.data(), dctx.data(), nullptr, h_t, att_t,
                                  enc.keys.data(), enc.proj.data(), enc.lengths.data(), nullptr, B, Sn);
            for (std::size_t i = 0; i < BH; ++i) dh_part[i] += dq[i];
        }
        S* d0[kMaxStates] = {dh_prev.data(), NS > 1 ? dc_prev.data() : nullptr};
        const S* dn[kMaxStates] = {dh_next.data(), NS > 1 ? dc_next.data() : nullptr};
        m.decoder.backward(dx.data(), d0, dh_part.data(), dn);
        const std::int64_t* tk = tok.data() + std::size_t(t) * B;
        for (int b = 0; b < B && !values; ++b) {
            S* row = dtemb + std::size_t(tk[b]) * E;
            const S* d = dx.data() + std::size_t(b) * X;
            for (int e = 0; e < E; ++e) row[e] += d[e];
        }
        if (m.luong() && F)
            for (int b = 0; b < B; ++b) std::memcpy(dfeed.data() + std::size_t(b) * H, dx.data() + std::size_t(b) * X + E, sizeof(S) * H);
        if (m.bahdanau()) {  // c_t = attn(h_{t-1}): fed into x_t and into õ_t
            if (F)
                for (int b = 0; b < B; ++b)
                    for (int k = 0; k < K; ++k) dctx[std::size_t(b) * K + k] += dx[std::size_t(b) * X + E + k];
            m.attention->backward(dq.data(), dkeys.data(), dproj.data(), dctx.data(), nullptr, h_prev, att_t,
                                  enc.keys.data(), enc.proj.data(), enc.lengths.data(), nullptr, B, Sn);
            for (std::size_t i = 0; i < BH; ++i) dh_prev[i] += dq[i];
        }
        std::swap(dh_next, dh_prev);
        if (NS > 1) std::swap(dc_next, dc_prev);
    }

    // The bridge, then the encoder (its outputs' gradient is the keys', through the prepared keys too).
    const int L = m.config.encoder_layers, D = m.D();
    std::vector<S> dfinals[2];
    for (int k = 0; k < NS; ++k) {
        std::vector<S> dbridge(std::size_t(B) * K);
        if (k == 0)
            dense_backward<S>(dbridge.data(), m.g(m.layout.bridge_hw), m.g(m.layout.bridge_hb), dh_next.data(),
                              enc.state0[0].data(), enc.bridge_in[0].data(), m.p(m.layout.bridge_hw), B, K, H,
                              Activation::Tanh);
        else
            dense_backward<S>(dbridge.data(), m.g(m.layout.bridge_cw), m.g(m.layout.bridge_cb), dc_next.data(),
                              enc.state0[1].data(), enc.bridge_in[1].data(), m.p(m.layout.bridge_cw), B, K, H,
                              Activation::None);
        dfinals[k].assign(std::size_t(L) * D * B * H, S(0));
        for (int d = 0; d < D; ++d)
            for (int b = 0; b < B; ++b)
                std::memcpy(dfinals[k].data() + ((std::size_t(L - 1) * D + d) * B + b) * H,
                            dbridge.data() + std::size_t(b) * K + d * H, sizeof(S) * H);
    }
    if (m.attention) m.attention->prepare_backward(dkeys.data(), dproj.data(), enc.keys.data(), B, Sn);
    std::vector<S> dys(dkeys.size()), dxs(enc.xs.size());
    for (int s = 0; s < Sn; ++s)
        for (int b = 0; b < B; ++b)
            std::memcpy(dys.data() + (std::size_t(s) * B + b) * K, dkeys.data() + (std::size_t(b) * Sn + s) * K,
                        sizeof(S) * K);
    const S* dn[kMaxStates] = {dfinals[0].data(), NS > 1 ? dfinals[1].data() : nullptr};
    m.encoder.backward(dxs.data(), nullptr, dys.data(), dn);
    if (m.src_values()) return result;
    S* dsemb = m.g(m.layout.src_emb);
    const int Ein = m.Ein();
    for (int s = 0; s < Sn; ++s)
        for (int b = 0; b < B; ++b) {
            S* row = dsemb + std::size_t(batch.src_tokens[std::size_t(b) * Sn + s]) * Ein;
            const S* d = dxs.data() + (std::size_t(s) * B + b) * Ein;
            for (int e = 0; e < Ein; ++e) row[e] += d[e];
        }
    return result;
}

template class Seq2Seq<float>;
template class Seq2Seq<double>;

}  // namespace v0
}  // namespace rnnkit
