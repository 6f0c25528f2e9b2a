// The layer stack: L layers x D directions of one kernel, inter-layer dropout, the tape of recorded
// forwards. Shape legend and gradient rule: see rnnkit/config.hpp.
#include "rnnkit/recurrent.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "denormals.hpp"
#include "kernels.hpp"
#include "pointwise.hpp"
#include "random.hpp"
#include "workspace.hpp"

namespace rnnkit {
inline namespace v0 {

namespace {

enum Which { kWeightIH = 0, kWeightHH, kBiasIH, kBiasHH, kPeephole, kWhichCount };

int gate_stride(const LayerConfig& c) {
    switch (c.kind) {
        case CellKind::LSTM: return detail::lstm_gate_stride(c.hidden_size);
        case CellKind::GRU: return detail::gru_gate_stride(c.hidden_size);
        default: return detail::rnn_gate_stride(c.hidden_size);
    }
}

using detail::mix;
using detail::uniform01;

}  // namespace

// Everything one training forward saves for its backward, in one slab.
template <class S>
struct Recurrent<S>::Record {
    int T = 0, B = 0;
    std::vector<int> lengths;          // [B] or empty, in decreasing order
    std::vector<int> order;            // [B]: batch row i of this record is the caller's row order[i]; or empty
    std::vector<S> slab;
    std::vector<std::size_t> input;    // per layer: [T, B, I_l] (layer 0: a copy of x; then dropped-out outputs)
    std::vector<std::size_t> mask;     // per layer l < L-1 when dropout > 0: [T, B, D*H]
    std::vector<std::size_t> hmask;    // per (layer, direction) when recurrent_dropout > 0: [B, H]
    std::vector<std::size_t> gates;    // per (layer, direction): [T, B, gate_stride]
    std::vector<std::size_t> h, c;     // per (layer, direction): [T+1, B, H] slots (c: LSTM only)
    const int* lengths_or_null() const { return lengths.empty() ? nullptr : lengths.data(); }
};

template <class S>
Recurrent<S>::Recurrent(const LayerConfig& config) : config_(config) {
    validate(config_);
    const int L = config_.num_layers, D = num_directions(), H = config_.hidden_size;
    const int G = gate_count(config_.kind) * H;
    std::size_t offset = 0;
    auto add = [&](std::string name, std::vector<std::int64_t> shape) {
        std::size_t size = 1;
        for (auto s : shape) size *= std::size_t(s);
        layout_.push_back(ParamInfo{std::move(name), std::move(shape), offset, size});
        offset += size;
    };
    for (int l = 0; l < L; ++l)
        for (int d = 0; d < D; ++d) {
            const std::string suffix =
                config_.cell ? std::string() : "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
            add("weight_ih" + suffix, {G, layer_input_size(l)});
            add("weight_hh" + suffix, {G, H});
            if (config_.bias) {
                add("bias_ih" + suffix, {G});
                add("bias_hh" + suffix, {G});
            }
            if (config_.peephole) add("weight_peephole" + suffix, {3, H});
        }
    params_.assign(offset, S(0));
    grads_.assign(offset, S(0));
    reset_parameters(config_.seed);
}

template <class S> Recurrent<S>::~Recurrent() = default;
template <class S> Recurrent<S>::Recurrent(Recurrent&&) noexcept = default;
template <class S> Recurrent<S>& Recurrent<S>::operator=(Recurrent&&) noexcept = default;

template <class S>
int Recurrent<S>::layer_input_size(int layer) const {
    return layer == 0 ? config_.input_size : num_directions() * config_.hidden_size;
}

template <class S>
const ParamInfo* Recurrent<S>::find(int layer, int dir, int which) const {
    // layout_ holds, per (layer, direction), weight_ih, weight_hh, [bias_ih, bias_hh], [weight_peephole]
    const int per = 2 + (config_.bias ? 2 : 0) + (config_.peephole ? 1 : 0);
    int k;
    switch (which) {
        case kWeightIH: k = 0; break;
        case kWeightHH: k = 1; break;
        case kBiasIH: if (!config_.bias) return nullptr; k = 2; break;
        case kBiasHH: if (!config_.bias) return nullptr; k = 3; break;
        default: if (!config_.peephole) return nullptr; k = config_.bias ? 4 : 2; break;
    }
    return &layout_[std::size_t(layer * num_directions() + dir) * per + k];
}

template <class S>
void Recurrent<S>::zero_grad() {
    std::fill(grads_.begin(), grads_.end(), S(0));
}

template <class S>
void Recurrent<S>::reset_parameters(std::uint64_t seed) {
    std::mt19937_64 engine(mix(seed, 0));
    const double k = 1.0 / std::sqrt(double(config_.hidden_size));
    for (auto& v : params_) v = S(-k + 2.0 * k * uniform01(engine));
}

template <class S>
std::size_t Recurrent<S>::tape_size() const {
    return tape_.size();
}

template <class S>
void Recurrent<S>::recorded_shape(int& T, int& B) const {
    if (tape_.empty()) throw std::logic_error("backward: no recorded training forward");
    T = tape_.back()->T;
    B = tape_.back()->B;
}

template <class S>
void Recurrent<S>::clear_tape() {
    tape_.clear();
}

template <class S>
void Recurrent<S>::forward(S* y, S* h_n, S* c_n, const S* x, const S* h0, const S* c0, const int* lengths,
                           int T, int B, bool training) {
    if (T < 1) throw std::invalid_argument("x: expected at least one time step, got T=" + std::to_string(T));
    if (B < 1) throw std::invalid_argument("x: expected a batch of at least one, got B=" + std::to_string(B));
    if (static_cast<long long>(T) * B >= (1LL << 31))  // kernels index rows of T*B with int
        throw std::invalid_argument("x: T*B must be below 2^31, got T=" + std::to_string(T) + ", B=" + std::to_string(B));
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > T)
                throw std::invalid_argument("lengths: expected values in 1.." + std::to_string(T) + ", got " +
                                            std::to_string(lengths[b]) + " at index " + std::to_string(b));
    if (lengths && !std::is_sorted(lengths, lengths + B, std::greater<int>()))
        return forward_sorted(y, h_n, c_n, x, h0, c0, lengths, T, B, training);
    forward_checked(y, h_n, c_n, x, h0, c0, lengths, T, B, training);
}

namespace {

// dst[a, i, :] = src[a, order[i], :] (gather) or dst[a, order[i], :] = src[a, i, :] (scatter), for a < A,
// i < B, rows of F values.
template <class S>
void permute_rows(S* dst, const S* src, const std::vector<int>& order, int A, int F, bool gather) {
    const int B = int(order.size());
    for (int a = 0; a < A; ++a)
        for (int i = 0; i < B; ++i) {
            const std::size_t sorted = std::size_t(a) * B + i, given = std::size_t(a) * B + order[i];
            std::memcpy(dst + (gather ? sorted : given) * F, src + (gather ? given : sorted) * F, sizeof(S) * F);
        }
}

}  // namespace

template <class S>
void Recurrent<S>::forward_sorted(S* y, S* h_n, S* c_n, const S* x, const S* h0, const S* c0, const int* lengths,
                                  int T, int B, bool training) {
    const int SL = config_.num_layers * num_directions(), H = config_.hidden_size, I = config_.input_size;
    const int Y = num_directions() * H;
    const bool lstm = config_.kind == CellKind::LSTM;
    std::vector<int> order(B), sorted(B);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [lengths](int a, int b) { return lengths[a] > lengths[b]; });
    for (int i = 0; i < B; ++i) sorted[i] = lengths[order[i]];
    const std::size_t TB = std::size_t(T) * B, SB = std::size_t(SL) * B;
    detail::Scratch<S> mem;
    S* xs = mem.take(TB * (I + Y) + 4 * SB * H);
    S *ys = xs + TB * I, *h0s = ys + TB * Y, *c0s = h0s + SB * H, *hns = c0s + SB * H, *cns = hns + SB * H;
    permute_rows(xs, x, order, T, I, true);
    if (h0) permute_rows(h0s, h0, order, SL, H, true);
    if (c0 && lstm) permute_rows(c0s, c0, order, SL, H, true);
    forward_checked(ys, hns, lstm ? cns : nullptr, xs, h0 ? h0s : nullptr, c0 && lstm ? c0s : nullptr,
                    sorted.data(), T, B, training);
    permute_rows(y, ys, order, T, Y, false);
    if (h_n) permute_rows(h_n, hns, order, SL, H, false);
    if (c_n && lstm) permute_rows(c_n, cns, order, SL, H, false);
    if (training) tape_.back()->order = std::move(order);
}

template <class S>
void Recurrent<S>::forward_checked(S* y, S* h_n, S* c_n, const S* x, const S* h0, const S* c0, const int* lengths,
                                   int T, int B, bool training) {
    const int L = config_.num_layers, D = num_directions(), H = config_.hidden_size;
    const bool lstm = config_.kind == CellKind::LSTM;
    if (!training && D == 1 && L > 1 && T > detail::kInferenceChunk) {
        // Unidirectional inference runs a wavefront: each chunk of time steps goes through every layer before
        // the next chunk, carrying the states, so memory beyond y stays O(chunk), not O(T). A step past a
        // sequence's end has a local length <= 0: its state is carried unchanged, as in one long pass.
        const int C = detail::kInferenceChunk, I = config_.input_size;
        const std::size_t BH = std::size_t(B) * H, states = std::size_t(L) * BH;
        detail::Scratch<S> mem;
        S* carry = mem.take(4 * states);  // h, c, next h, next c: [L, B, H] each
        S *h = carry, *c = h + states, *h_next = c + states, *c_next = h_next + states;
        detail::set_state(h, h0, int(states));
        detail::set_state(c, lstm ? c0 : nullptr, int(states));
        std::vector<int> local(lengths ? B : 0);
        for (int t0 = 0; t0 < T; t0 += C) {
            const int n = std::min(C, T - t0);
            for (int b = 0; b < int(local.size()); ++b) local[b] = std::min(lengths[b] - t0, n);
            forward_checked(y + std::size_t(t0) * BH, h_next, lstm ? c_next : nullptr, x + std::size_t(t0) * B * I,
                            h, lstm ? c : nullptr, lengths ? local.data() : nullptr, n, B, false);
            std::swap(h, h_next);
            std::swap(c, c_next);
        }
        if (h_n) std::memcpy(h_n, h, sizeof(S) * states);
        if (c_n && lstm) std::memcpy(c_n, c, sizeof(S) * states);
        return;
    }
    detail::DenormalGuard flush_denormals;
    const int stride = gate_stride(config_);
    const std::size_t TB = std::size_t(T) * B, BH = std::size_t(B) * H, out_cols = std::size_t(D) * H;
    const bool dropout = training && config_.dropout > 0.0 && L > 1;
    const bool recurrent_dropout = training && config_.recurrent_dropout > 0.0;
    std::mt19937_64 engine;
    if (dropout || recurrent_dropout) engine.seed(mix(config_.seed, ++dropout_stream_));
    auto draw_mask = [&engine](S* m, std::size_t n, double p) { detail::draw_dropout_mask(m, n, p, engine); };

    // Slab layout: training keeps everything backward needs; inference keeps two state slots per
    // direction and two layer outputs to ping-pong between layers.
    std::unique_ptr<Record> rec;
    detail::Scratch<S> mem;
    std::vector<S*> layer_in(L), layer_out(L), h_slots(L * D), c_slots(L * D), gate_buf(L * D);
    std::vector<S*> masks(L, nullptr), hmasks(L * D, nullptr);
    if (training) {
        rec.reset(new Record);
        rec->T = T;
        rec->B = B;
        if (lengths) rec->lengths.assign(lengths, lengths + B);
        std::size_t n = 0;
        auto take = [&n](std::size_t size) { std::size_t at = n; n += size; return at; };
        for (int l = 0; l < L; ++l) {
            rec->input.push_back(take(TB * layer_input_size(l)));
            if (dropout && l < L - 1) rec->mask.push_back(take(TB * out_cols));
            for (int d = 0; d < D; ++d) {
                rec->gates.push_back(take(TB * stride));
                rec->h.push_back(take((T + 1) * BH));
                rec->c.push_back(lstm ? take((T + 1) * BH) : 0);
                if (recurrent_dropout) rec->hmask.push_back(take(BH));
            }
        }
        // A layer keeps one record: the one this forward replaces lends its memory (no fresh pages).
        if (!config_.cell && !tape_.empty()) {
            rec->slab = std::move(tape_.back()->slab);
            tape_.clear();
        }
        rec->slab.resize(n);
        S* base = rec->slab.data();
        std::memcpy(base + rec->input[0], x, sizeof(S) * TB * config_.input_size);
        for (int l = 0; l < L; ++l) {
            layer_in[l] = base + rec->input[l];
            layer_out[l] = l == L - 1 ? y : base + rec->input[l + 1];
            if (dropout && l < L - 1) masks[l] = base + rec->mask[l];
            for (int d = 0; d < D; ++d) {
                const int k = l * D + d;
                gate_buf[k] = base + rec->gates[k];
                h_slots[k] = base + rec->h[k];
                c_slots[k] = lstm ? base + rec->c[k] : nullptr;
                if (recurrent_dropout) {
                    hmasks[k] = base + rec->hmask[k];
                    draw_mask(hmasks[k], BH, config_.recurrent_dropout);
                }
            }
        }
    } else {
        // layer outputs between layers: one buffer for two layers, two (ping-pong) for more
        const std::size_t between = std::size_t(std::min(L - 1, 2)) * TB * out_cols;
        S* base = mem.take(between + std::size_t(L * D) * 2 * BH * (lstm ? 2 : 1));
        for (int l = 0; l < L; ++l) {
            layer_in[l] = l == 0 ? const_cast<S*>(x) : base + ((l - 1) % 2) * TB * out_cols;
            layer_out[l] = l == L - 1 ? y : base + (l % 2) * TB * out_cols;
        }
        S* states = base + between;
        for (int k = 0; k < L * D; ++k) {
            h_slots[k] = states + std::size_t(k) * 2 * BH * (lstm ? 2 : 1);
            c_slots[k] = lstm ? h_slots[k] + 2 * BH : nullptr;
        }
    }

    for (int l = 0; l < L; ++l) {
        for (int d = 0; d < D; ++d) {
            const int k = l * D + d;
            detail::SeqForward<S> a;
            a.y = layer_out[l] + std::size_t(d) * H;
            a.ldy = int(out_cols);
            a.h = h_slots[k];
            a.c = c_slots[k];
            a.gates = gate_buf[k];
            a.h_n = h_n ? h_n + k * BH : nullptr;
            a.c_n = c_n && lstm ? c_n + k * BH : nullptr;
            a.x = layer_in[l];
            a.h0 = h0 ? h0 + k * BH : nullptr;
            a.c0 = c0 && lstm ? c0 + k * BH : nullptr;
            auto p = [&](int which) { return entry(params_.data(), l, d, which); };
            a.W = p(kWeightIH);
            a.R = p(kWeightHH);
            a.bW = p(kBiasIH);
            a.bR = p(kBiasHH);
            a.P = p(kPeephole);
            a.lengths = lengths;
            a.hmask = hmasks[k];
            a.T = T;
            a.B = B;
            a.I = layer_input_size(l);
            a.H = H;
            a.reverse = d == 1;
            a.training = training;
            a.linear_before_reset = config_.linear_before_reset;
            a.relu = config_.kind == CellKind::RNN_RELU;
            switch (config_.kind) {
                case CellKind::LSTM: detail::lstm_forward(a); break;
                case CellKind::GRU: detail::gru_forward(a); break;
                default: detail::rnn_forward(a); break;
            }
        }
        if (masks[l]) {
            draw_mask(masks[l], TB * out_cols, config_.dropout);
            S* out = layer_out[l];
            for (std::size_t i = 0; i < TB * out_cols; ++i) out[i] *= masks[l][i];
        }
    }
    if (training) {
        if (!config_.cell) tape_.clear();  // a layer keeps only its most recent record
        tape_.push_back(std::move(rec));
    }
}

template <class S>
void Recurrent<S>::backward(S* dx, S* dh0, S* dc0, const S* dy, const S* dh_n, const S* dc_n) {
    if (tape_.empty())
        throw std::logic_error("backward: no recorded training forward (call forward with training=True first)");
    if (!tape_.back()->order.empty()) return backward_sorted(dx, dh0, dc0, dy, dh_n, dc_n);
    backward_checked(dx, dh0, dc0, dy, dh_n, dc_n);
}

template <class S>
void Recurrent<S>::backward_sorted(S* dx, S* dh0, S* dc0, const S* dy, const S* dh_n, const S* dc_n) {
    const std::vector<int> order = tape_.back()->order;
    const int T = tape_.back()->T, B = tape_.back()->B;
    const int SL = config_.num_layers * num_directions(), H = config_.hidden_size, I = config_.input_size;
    const int Y = num_directions() * H;
    const bool lstm = config_.kind == CellKind::LSTM;
    const std::size_t TB = std::size_t(T) * B, SB = std::size_t(SL) * B;
    detail::Scratch<S> mem;
    S* dys = mem.take(TB * (I + Y) + 4 * SB * H);
    S *dxs = dys + TB * Y, *dhns = dxs + TB * I, *dcns = dhns + SB * H, *dh0s = dcns + SB * H, *dc0s = dh0s + SB * H;
    permute_rows(dys, dy, order, T, Y, true);
    if (dh_n) permute_rows(dhns, dh_n, order, SL, H, true);
    if (dc_n && lstm) permute_rows(dcns, dc_n, order, SL, H, true);
    backward_checked(dxs, dh0 ? dh0s : nullptr, dc0 && lstm ? dc0s : nullptr, dys, dh_n ? dhns : nullptr,
                     dc_n && lstm ? dcns : nullptr);
    permute_rows(dx, dxs, order, T, I, false);
    if (dh0) permute_rows(dh0, dh0s, order, SL, H, false);
    if (dc0 && lstm) permute_rows(dc0, dc0s, order, SL, H, false);
}

template <class S>
void Recurrent<S>::backward_checked(S* dx, S* dh0, S* dc0, const S* dy, const S* dh_n, const S* dc_n) {
    detail::DenormalGuard flush_denormals;
    std::unique_ptr<Record> rec = std::move(tape_.back());
    tape_.pop_back();
    const int T = rec->T, B = rec->B;
    const int L = config_.num_layers, D = num_directions(), H = config_.hidden_size;
    const bool lstm = config_.kind == CellKind::LSTM;
    const std::size_t TB = std::size_t(T) * B, BH = std::size_t(B) * H, out_cols = std::size_t(D) * H;
    detail::Scratch<S> mem;
    S* between = L > 1 ? mem.take(2 * TB * out_cols) : nullptr;  // gradients w.r.t. inner layer outputs
    S* base = rec->slab.data();

    const S* dy_layer = dy;
    for (int l = L - 1; l >= 0; --l) {
        S* dx_layer = l == 0 ? dx : between + (l % 2) * TB * out_cols;
        for (int d = 0; d < D; ++d) {
            const int k = l * D + d;
            detail::SeqBackward<S> a;
            a.dx = dx_layer;
            a.dx_accumulate = d > 0;
            a.dh0 = dh0 ? dh0 + k * BH : nullptr;
            a.dc0 = dc0 && lstm ? dc0 + k * BH : nullptr;
            auto g = [&](int which) { return entry(grads_.data(), l, d, which); };
            auto p = [&](int which) { return entry(params_.data(), l, d, which); };
            a.dW = g(kWeightIH);
            a.dR = g(kWeightHH);
            a.dbW = g(kBiasIH);
            a.dbR = g(kBiasHH);
            a.dP = g(kPeephole);
            a.dy = dy_layer + std::size_t(d) * H;
            a.ldy = int(out_cols);
            a.dh_n = dh_n ? dh_n + k * BH : nullptr;
            a.dc_n = dc_n && lstm ? dc_n + k * BH : nullptr;
            a.gates = base + rec->gates[k];
            a.h = base + rec->h[k];
            a.c = lstm ? base + rec->c[k] : nullptr;
            a.x = base + rec->input[l];
            a.W = p(kWeightIH);
            a.R = p(kWeightHH);
            a.P = p(kPeephole);
            a.lengths = rec->lengths_or_null();
            a.hmask = rec->hmask.empty() ? nullptr : base + rec->hmask[k];
            a.T = T;
            a.B = B;
            a.I = layer_input_size(l);
            a.H = H;
            a.reverse = d == 1;
            a.linear_before_reset = config_.linear_before_reset;
            a.relu = config_.kind == CellKind::RNN_RELU;
            switch (config_.kind) {
                case CellKind::LSTM: detail::lstm_backward(a); break;
                case CellKind::GRU: detail::gru_backward(a); break;
                default: detail::rnn_backward(a); break;
            }
        }
        if (l > 0 && !rec->mask.empty()) {
            const S* m = base + rec->mask[l - 1];
            for (std::size_t i = 0; i < TB * out_cols; ++i) dx_layer[i] *= m[i];
        }
        dy_layer = dx_layer;
    }
}

template class Recurrent<float>;
template class Recurrent<double>;

}  // namespace v0
}  // namespace rnnkit
