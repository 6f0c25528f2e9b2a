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

#include "cells/registry.hpp"
#include "nn/record.hpp"
#include "cpu/denormals.hpp"
#include "cpu/pointwise.hpp"
#include "cpu/team.hpp"
#include "cpu/workspace.hpp"
#include "random.hpp"
#include "rnnkit/cells.hpp"
#include "sequence.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::States;

namespace {

// The parameters a driver takes, by role (entry()).
enum Role { kWeightIH = 0, kWeightHH, kBiasIH, kBiasHH, kExtra, kProjection, kNorm, kGates = kNorm + 4, kRoleCount };

int role_of(const ParamTemplate& p) {
    const std::string name = p.name;
    if (name == "weight_ih") return kWeightIH;
    if (name == "weight_hh") return kWeightHH;
    if (name == "bias_ih") return kBiasIH;
    if (name == "bias_hh") return kBiasHH;
    if (name == "weight_hr") return kProjection;
    if (name == "weight_ln_ih") return kNorm;
    if (name == "weight_ln_hh") return kNorm + 1;
    if (name == "weight_ln_c") return kNorm + 2;
    if (name == "bias_ln_c") return kNorm + 3;
    if (name == "weight_gates") return kGates;
    return kExtra;
}

bool present(const ParamTemplate& p, const LayerConfig& c) {
    switch (p.presence) {
        case Presence::WithBias: return c.bias;
        case Presence::WithPeephole: return c.peephole;
        case Presence::WithProjection: return c.proj_size > 0;
        case Presence::WithLayerNorm: return c.layer_norm;
        case Presence::WithFullGateRecurrence: return c.full_gate_recurrence;
        default: return true;
    }
}

using detail::mix;
using detail::uniform01;

}  // namespace


template <class S>
Recurrent<S>::Recurrent(const LayerConfig& config) : config_(config) {
    validate(config_);
    const CellInfo& cell = cell_info(config_.kind);
    const detail::CellSpec& spec = detail::cell_spec(config_.kind);
    if (!spec.f32.forward[int(config_.backend)])
        throw std::invalid_argument(std::string("backend: '") + to_string(config_.backend) +
                                    "' is not available for cell '" + cell.name + "' in this build");
    const detail::CellOptions opt = spec.configure(config_);
    if (config_.backend == Backend::Reference &&
        (opt.general || config_.zoneout > 0 || config_.zoneout_cell > 0 || config_.proj_size > 0 || config_.layer_norm ||
         config_.full_gate_recurrence))
        throw std::invalid_argument(std::string("backend: 'reference' runs the classic ") + cell.name +
                                    " only (no activation, gate, clip, zoneout or projection options); use backend='cpu'");
    static_assert(kRoleCount == kRoles, "roles");
    num_states_ = opt.states;
    const int L = config_.num_layers, D = num_directions(), H = config_.hidden_size;
    std::size_t offset = 0;
    for (int l = 0; l < L; ++l)
        for (int d = 0; d < D; ++d) {
            const std::string suffix =
                config_.cell ? std::string() : "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
            std::size_t roles[kRoleCount] = {};
            for (const ParamTemplate& p : cell.params) {
                if (!present(p, config_)) continue;
                std::vector<std::int64_t> shape;
                std::size_t size = 1;
                for (Dim dim : p.shape) {
                    const int n = dim == Dim::Gates ? (opt.gate_rows ? opt.gate_rows : opt.gates * H)
                                  : dim == Dim::HeadDim ? H / config_.num_heads
                                  : dim == Dim::Input ? layer_input_size(l)
                                  : dim == Dim::Hidden ? H
                                  : dim == Dim::Output ? state_size(0)
                                  : dim == Dim::GateState ? 3 * H
                                                       : cell.extra_rows;
                    shape.push_back(n);
                    size *= std::size_t(n);
                }
                roles[role_of(p)] = offset + 1;
                layout_.push_back(ParamInfo{p.name + suffix, std::move(shape), offset, size});
                init_.push_back(int(p.init));
                offset += size;
            }
            roles_.insert(roles_.end(), roles, roles + kRoleCount);
        }
    detail::require_memory(2.0 * double(offset) * sizeof(S),
                           "hidden_size=" + std::to_string(config_.hidden_size) + ", input_size=" +
                               std::to_string(config_.input_size) + ": the layer's parameters and gradients");
    params_.assign(offset, S(0));
    grads_.assign(offset, S(0));
    reset_parameters(config_.seed);
}

template <class S> Recurrent<S>::~Recurrent() = default;
template <class S> Recurrent<S>::Recurrent(Recurrent&&) noexcept = default;
template <class S> Recurrent<S>& Recurrent<S>::operator=(Recurrent&&) noexcept = default;

template <class S>
int Recurrent<S>::layer_input_size(int layer) const {
    return layer == 0 ? config_.input_size : output_size();
}

template <class S>
void Recurrent<S>::zero_grad() {
    std::fill(grads_.begin(), grads_.end(), S(0));
}

template <class S>
void Recurrent<S>::reset_parameters(std::uint64_t seed) {
    std::mt19937_64 engine(mix(seed, 0));
    const double k = 1.0 / std::sqrt(double(config_.hidden_size));
    const detail::CellSpec& spec = detail::cell_spec(config_.kind);
    std::vector<double> values;
    for (std::size_t i = 0; i < layout_.size(); ++i) {
        S* p = params_.data() + layout_[i].offset;
        for (std::size_t j = 0; j < layout_[i].size; ++j)
            p[j] = init_[i] == int(Init::Ones) ? S(1) : init_[i] == int(Init::Zeros) ? S(0)
                                                                                    : S(-k + 2.0 * k * uniform01(engine));
        if (spec.initialize) {  // the row's own values (xLSTM gate biases), drawn from the same engine
            values.assign(p, p + layout_[i].size);
            spec.initialize(config_, layout_[i].name, values, engine);
            for (std::size_t j = 0; j < layout_[i].size; ++j) p[j] = S(values[j]);
        }
    }
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
void Recurrent<S>::forward(S* y, S* h_n, S* c_n, const S* x, const S* h0, const S* c0, const int* lengths, int T,
                           int B, bool training) {
    S* finals[2] = {h_n, c_n};
    const S* inits[2] = {h0, c0};
    forward(y, finals, x, inits, lengths, T, B, training);
}

template <class S>
void Recurrent<S>::forward(S* y, S* const* state_n, const S* x, const S* const* state0, const int* lengths, int T,
                           int B, bool training) {
    if (T < 1) throw std::invalid_argument("x: expected at least one time step, got T=" + std::to_string(T));
    if (B < 1) throw std::invalid_argument("x: expected a batch of at least one, got B=" + std::to_string(B));
    if (static_cast<long long>(T) * B >= (1LL << 31))  // drivers index rows of T*B with int
        throw std::invalid_argument("x: T*B must be below 2^31, got T=" + std::to_string(T) + ", B=" + std::to_string(B));
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 0 || lengths[b] > T)
                throw std::invalid_argument("lengths: expected values in 0.." + std::to_string(T) + ", got " +
                                            std::to_string(lengths[b]) + " at index " + std::to_string(b));
    const States<S*> fin(state_n, num_states_);
    const States<const S*> init(state0, num_states_);
    if (lengths && !std::is_sorted(lengths, lengths + B, std::greater<int>()))
        return forward_sorted(y, fin.at, x, init.at, lengths, T, B, training);
    forward_checked(y, fin.at, x, init.at, lengths, T, B, training);
}

template <class S>
void Recurrent<S>::forward_checked(S* y, S* const* state_n, const S* x, const S* const* state0, const int* lengths,
                                   int T, int B, bool training) {
    const detail::KernelThreads threads;
    const int L = config_.num_layers, D = num_directions(), H = config_.hidden_size, NS = num_states_;
    const detail::CellSpec& cell = detail::cell_spec(config_.kind);
    if (!training && D == 1 && L > 1 && T > detail::kInferenceChunk) {
        // Unidirectional inference runs a wavefront: each chunk of time steps goes through every layer before
        // the next chunk, carrying the states, so memory beyond y stays O(chunk), not O(T). A step past a
        // sequence's end has a local length <= 0: its state is carried unchanged, as in one long pass.
        const int C = detail::kInferenceChunk, I = config_.input_size;
        std::size_t states[kMaxStates] = {}, total = 0;  // per state: [L, B, width]
        for (int k = 0; k < NS; ++k) total += 2 * (states[k] = std::size_t(L) * B * state_size(k));
        detail::Scratch<S> mem;
        S* carry = mem.take(total);  // per state: current and next
        States<S*> cur, next;
        for (int k = 0, at = 0; k < NS; at += int(2 * states[k]), ++k) {
            cur.at[k] = carry + at;
            next.at[k] = cur.at[k] + states[k];
            detail::set_state(cur.at[k], state0[k], int(states[k]));
        }
        std::vector<int> local(lengths ? B : 0);
        for (int t0 = 0; t0 < T; t0 += C) {
            const int n = std::min(C, T - t0);
            for (int b = 0; b < int(local.size()); ++b) local[b] = std::min(lengths[b] - t0, n);
            forward_checked(y + std::size_t(t0) * B * output_size(), next.at, x + std::size_t(t0) * B * I, cur.at,
                            lengths ? local.data() : nullptr, n, B, false);
            std::swap(cur, next);
        }
        for (int k = 0; k < NS; ++k)
            if (state_n[k]) std::memcpy(state_n[k], cur.at[k], sizeof(S) * states[k]);
        return;
    }
    detail::DenormalGuard flush_denormals;
    const detail::CellOptions opt = cell.configure(config_);
    const int stride = opt.saved * H;
    const double zoneout_p[2] = {config_.zoneout, NS > 1 ? config_.zoneout_cell : 0.0};  // h, c
    const std::size_t TB = std::size_t(T) * B, out_cols = std::size_t(output_size());
    std::size_t SB[kMaxStates] = {};  // per state: [B, width]
    for (int q = 0; q < NS; ++q) SB[q] = std::size_t(B) * state_size(q);
    const bool proj = config_.proj_size > 0;
    const bool dropout = training && config_.dropout > 0.0 && L > 1;
    const bool recurrent_dropout = training && config_.recurrent_dropout > 0.0;
    const bool zoneout = training && (zoneout_p[0] > 0.0 || zoneout_p[1] > 0.0);
    std::mt19937_64 engine;
    if (dropout || recurrent_dropout || zoneout) engine.seed(mix(config_.seed, ++dropout_stream_));
    auto draw_mask = [&engine](S* m, std::size_t n, double p) { detail::draw_dropout_mask(m, n, p, engine); };

    // Slab layout: training keeps everything backward needs; inference keeps two state slots per
    // direction and state, and two layer outputs to ping-pong between layers.
    std::unique_ptr<Record> rec;
    detail::Scratch<S> mem;
    std::vector<S*> layer_in(L), layer_out(L), slots(std::size_t(L) * D * NS), gate_buf(L * D);
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
                for (int k = 0; k < NS; ++k) rec->state.push_back(take(std::size_t(detail::training_slots(config_, k, T)) * SB[k]));
                if (recurrent_dropout) rec->hmask.push_back(take(SB[0]));
                if (proj) rec->m.push_back(take(TB * H));
                if (zoneout)
                    for (int k = 0; k < NS; ++k) rec->zmask.push_back(k < 2 && zoneout_p[k] > 0.0 ? take(TB * H) + 1 : 0);
            }
        }
        // A layer keeps one record: the one this forward replaces lends its memory (no fresh pages).
        if (!config_.cell && !tape_.empty()) {
            rec->slab = std::move(tape_.back()->slab);
            tape_.clear();
        }
        detail::require_memory(double(n) * sizeof(S),
                               "x: a training forward of T=" + std::to_string(T) + ", B=" + std::to_string(B) +
                                   " (activations kept for backward)",
                               "; train on shorter windows (fit(..., tbptt=K)) or smaller batches");
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
                for (int q = 0; q < NS; ++q) slots[std::size_t(k) * NS + q] = base + rec->state[std::size_t(k) * NS + q];
                if (recurrent_dropout) {
                    hmasks[k] = base + rec->hmask[k];
                    draw_mask(hmasks[k], SB[0], config_.recurrent_dropout);
                }
                for (int q = 0; zoneout && q < NS; ++q)
                    if (const std::size_t at = rec->zmask[std::size_t(k) * NS + q])
                        detail::draw_keep_mask(base + at - 1, TB * H, zoneout_p[q], engine);
            }
        }
    } else {
        // layer outputs between layers: one buffer for two layers, two (ping-pong) for more
        const std::size_t between = std::size_t(std::min(L - 1, 2)) * TB * out_cols;
        std::size_t per_direction = 0;
        for (int q = 0; q < NS; ++q) per_direction += 2 * SB[q];
        S* base = mem.take(between + std::size_t(L * D) * per_direction);
        for (int l = 0; l < L; ++l) {
            layer_in[l] = l == 0 ? const_cast<S*>(x) : base + ((l - 1) % 2) * TB * out_cols;
            layer_out[l] = l == L - 1 ? y : base + (l % 2) * TB * out_cols;
        }
        S* at = base + between;
        for (std::size_t k = 0; k < slots.size(); at += 2 * SB[k % NS], ++k) slots[k] = at;
    }

    for (int l = 0; l < L; ++l) {
        for (int d = 0; d < D; ++d) {
            const int k = l * D + d;
            detail::SeqForward<S> a;
            a.cell = &cell;
            a.y = layer_out[l] + std::size_t(d) * state_size(0);
            a.ldy = int(out_cols);
            a.gates = gate_buf[k];
            for (int q = 0; q < NS; ++q) {
                a.state[q] = slots[std::size_t(k) * NS + q];
                a.state_n[q] = state_n[q] ? state_n[q] + k * SB[q] : nullptr;
                a.state0[q] = state0[q] ? state0[q] + k * SB[q] : nullptr;
            }
            a.x = layer_in[l];
            auto p = [&](int role) { return entry(params_.data(), l, d, role); };
            a.W = p(kWeightIH);
            a.R = p(kWeightHH);
            a.bW = p(kBiasIH);
            a.bR = p(kBiasHH);
            a.extra = p(kExtra);
            a.lengths = lengths;
            a.hmask = hmasks[k];
            for (int q = 0; q < NS && q < 2; ++q) {
                if (training && rec && !rec->zmask.empty() && rec->zmask[std::size_t(k) * NS + q])
                    a.zoneout_mask[q] = rec->slab.data() + rec->zmask[std::size_t(k) * NS + q] - 1;
                else if (!training)
                    a.zoneout_p[q] = zoneout_p[q];
            }
            if (proj) {
                a.W_hr = p(kProjection);
                a.m = training ? rec->slab.data() + rec->m[k] : nullptr;
            }
            for (int q = 0; q < 4; ++q) a.ln[q] = p(kNorm + q);
            a.W_gates = p(kGates);
            a.opt = &opt;
            a.T = T;
            a.B = B;
            a.I = layer_input_size(l);
            a.H = H;
            a.P = state_size(0);
            a.reverse = d == 1;
            a.training = training;
            detail::sequence_forward(config_.backend, a);
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
    S* initials[2] = {dh0, dc0};
    const S* finals[2] = {dh_n, dc_n};
    backward(dx, initials, dy, finals);
}

template <class S>
void Recurrent<S>::backward(S* dx, S* const* dstate0, const S* dy, const S* const* dstate_n) {
    if (tape_.empty())
        throw std::logic_error("backward: no recorded training forward (call forward with training=True first)");
    const States<S*> d0(dstate0, num_states_);
    const States<const S*> dn(dstate_n, num_states_);
    if (!tape_.back()->order.empty()) return backward_sorted(dx, d0.at, dy, dn.at);
    backward_checked(dx, d0.at, dy, dn.at);
}

template <class S>
void Recurrent<S>::backward_checked(S* dx, S* const* dstate0, const S* dy, const S* const* dstate_n) {
    const detail::KernelThreads threads;
    detail::DenormalGuard flush_denormals;
    std::unique_ptr<Record> rec = std::move(tape_.back());
    tape_.pop_back();
    const int T = rec->T, B = rec->B;
    const int L = config_.num_layers, D = num_directions(), H = config_.hidden_size, NS = num_states_;
    const detail::CellSpec& cell = detail::cell_spec(config_.kind);
    const detail::CellOptions opt = cell.configure(config_);
    const std::size_t TB = std::size_t(T) * B, out_cols = std::size_t(output_size());
    std::size_t SB[kMaxStates] = {};  // per state: [B, width]
    for (int q = 0; q < NS; ++q) SB[q] = std::size_t(B) * state_size(q);
    detail::Scratch<S> mem;
    S* between = L > 1 ? mem.take(2 * TB * out_cols) : nullptr;  // gradients w.r.t. inner layer outputs
    S* base = rec->slab.data();

    const S* dy_layer = dy;
    for (int l = L - 1; l >= 0; --l) {
        S* dx_layer = l == 0 ? dx : between + (l % 2) * TB * out_cols;
        for (int d = 0; d < D; ++d) {
            const int k = l * D + d;
            detail::SeqBackward<S> a;
            a.cell = &cell;
            a.dx = dx_layer;
            a.dx_accumulate = d > 0;
            for (int q = 0; q < NS; ++q) {
                a.dstate0[q] = dstate0[q] ? dstate0[q] + k * SB[q] : nullptr;
                a.dstate_n[q] = dstate_n[q] ? dstate_n[q] + k * SB[q] : nullptr;
                a.state[q] = base + rec->state[std::size_t(k) * NS + q];
            }
            auto g = [&](int role) { return entry(grads_.data(), l, d, role); };
            auto p = [&](int role) { return entry(params_.data(), l, d, role); };
            a.dW = g(kWeightIH);
            a.dR = g(kWeightHH);
            a.dbW = g(kBiasIH);
            a.dbR = g(kBiasHH);
            a.dextra = g(kExtra);
            a.dy = dy_layer + std::size_t(d) * state_size(0);
            a.ldy = int(out_cols);
            a.gates = base + rec->gates[k];
            a.x = base + rec->input[l];
            a.W = p(kWeightIH);
            a.R = p(kWeightHH);
            a.extra = p(kExtra);
            a.lengths = rec->lengths_or_null();
            a.hmask = rec->hmask.empty() ? nullptr : base + rec->hmask[k];
            for (int q = 0; q < NS && !rec->zmask.empty(); ++q)
                if (const std::size_t at = rec->zmask[std::size_t(k) * NS + q]) a.zoneout_mask[q] = base + at - 1;
            for (int q = 0; q < 4; ++q) a.ln[q] = p(kNorm + q), a.dln[q] = g(kNorm + q);
            a.W_gates = p(kGates);
            a.dW_gates = g(kGates);
            if (!rec->m.empty()) {
                a.W_hr = p(kProjection);
                a.dW_hr = g(kProjection);
                a.m = base + rec->m[k];
            }
            a.opt = &opt;
            a.T = T;
            a.B = B;
            a.I = layer_input_size(l);
            a.H = H;
            a.P = state_size(0);
            a.reverse = d == 1;
            detail::sequence_backward(config_.backend, a);
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
