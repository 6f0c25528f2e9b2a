// Recurrent layers: stacked, optionally bidirectional layers of any registered cell (rnnkit/cells.hpp).
// Shape legend and gradient rule: see rnnkit/config.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "rnnkit/cells.hpp"
#include "rnnkit/config.hpp"

namespace rnnkit {
inline namespace v0 {

// A stack of L recurrent layers of D directions each. It owns one slab of parameters and one slab of
// gradients (same layout, see parameters()), and a tape of the activations recorded by training
// forwards. A layer keeps only its most recent record (tape limit 1); a cell (config.cell) keeps
// every step until backward consumes it, last in first out.
template <class S>
class Recurrent {
public:
    explicit Recurrent(const LayerConfig& config);
    ~Recurrent();
    Recurrent(Recurrent&&) noexcept;
    Recurrent& operator=(Recurrent&&) noexcept;

    const LayerConfig& config() const { return config_; }
    int num_directions() const { return config_.bidirectional ? 2 : 1; }
    int num_states() const { return num_states_; }  // state tensors of the cell, h first (LSTM: h, c)
    // Features of state k per (layer, direction, batch row): state_width(config, k) (rnnkit/cells.hpp): h has
    // proj_size with a projection, full gate recurrence's state 2 is 3H, the mLSTM's C is num_heads*dh*dh, ...
    int state_size(int k) const { return state_width(config_, k); }
    int output_size() const { return num_directions() * state_size(0); }  // y's features: D * width of h

    // Parameter slab: the cell's registry row (rnnkit/cells.hpp) per layer and direction, with torch.nn's names,
    // shapes and order (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, "_reverse" for the
    // backward direction), plus LSTM peepholes weight_peephole_l{k}: [3, H] rows i f o.
    const std::vector<ParamInfo>& parameters() const { return layout_; }
    std::size_t num_parameters() const { return params_.size(); }
    S* param_data() { return params_.data(); }
    const S* param_data() const { return params_.data(); }
    S* grad_data() { return grads_.data(); }
    const S* grad_data() const { return grads_.data(); }
    void zero_grad();
    // The registry row's initialisation (torch's default for every built-in cell: U(-1/sqrt(H), 1/sqrt(H))).
    void reset_parameters(std::uint64_t seed);

    // (With proj_size P > 0, h0, h_n and their gradients are [L*D, B, P] and y is [T, B, D*P].)
    // x: [T, B, I]; state0: num_states() pointers to [L*D, B, H] initial states (h first; each may be nullptr
    // for zeros), or nullptr for all zeros; lengths: [B] in 1..T or nullptr (all T), packed-sequence
    // semantics; y: [T, B, D*H]; state_n: num_states() pointers to [L*D, B, H] final states (each may be
    // nullptr), or nullptr. training=true records activations for backward and applies dropout.
    void forward(S* y, S* const* state_n, const S* x, const S* const* state0, const int* lengths, int T, int B,
                 bool training);
    // The same with an LSTM's (h, c) spelled out (c0, c_n are ignored by one-state cells).
    void forward(S* y, S* h_n, S* c_n, const S* x, const S* h0, const S* c0, const int* lengths, int T, int B,
                 bool training);

    // Backward through the most recent recorded forward (which it consumes).
    // dy: [T, B, D*H]; dstate_n: num_states() pointers to [L*D, B, H] (each may be nullptr: zeros), or nullptr;
    // dx: [T, B, I]; dstate0: num_states() pointers to [L*D, B, H] outputs (each may be nullptr), or nullptr.
    // Parameter gradients accumulate into the gradient slab.
    void backward(S* dx, S* const* dstate0, const S* dy, const S* const* dstate_n);
    void backward(S* dx, S* dh0, S* dc0, const S* dy, const S* dh_n, const S* dc_n);

    // Recorded forwards not yet consumed by backward, and the (T, B) of the most recent one.
    std::size_t tape_size() const;
    void recorded_shape(int& T, int& B) const;
    void clear_tape();

    // Dropout masks come from (config.seed, counter); the counter advances once per training forward that
    // draws masks. Saving and restoring it makes a resumed run draw the same masks.
    std::uint64_t rng_counter() const { return dropout_stream_; }
    void set_rng_counter(std::uint64_t counter) { dropout_stream_ = counter; }

private:
    struct Record;
    LayerConfig config_;
    std::vector<ParamInfo> layout_;
    std::vector<S> params_;
    std::vector<S> grads_;
    std::vector<std::unique_ptr<Record>> tape_;
    std::uint64_t dropout_stream_ = 0;   // advances once per training forward

    int num_states_ = 1;
    // Per (layer, direction): the slab offset + 1 of W, R, b_ih, b_hh, the extra parameter and W_hr (0: absent).
    std::vector<std::size_t> roles_;
    static constexpr int kRoles = 11;
    std::vector<int> init_;  // per layout_ entry: its Init (rnnkit/cells.hpp)

    int layer_input_size(int layer) const;
    // forward after argument checks; lengths (if any) are in decreasing order here and may hold values <= 0
    // (steps of a later time chunk). state_n / state0 hold num_states() pointers each (entries may be null).
    void forward_checked(S* y, S* const* state_n, const S* x, const S* const* state0, const int* lengths, int T,
                         int B, bool training);
    // forward/backward of a batch whose lengths are not in decreasing order: run on the batch sorted by
    // length (the drivers' products then skip the rows that have ended) and restore the caller's order.
    void forward_sorted(S* y, S* const* state_n, const S* x, const S* const* state0, const int* lengths, int T,
                        int B, bool training);
    void backward_sorted(S* dx, S* const* dstate0, const S* dy, const S* const* dstate_n);
    void backward_checked(S* dx, S* const* dstate0, const S* dy, const S* const* dstate_n);
    // The slab entry (parameter or gradient) of one role of (layer, dir), or nullptr if it does not exist.
    template <class T>
    T* entry(T* slab, int layer, int dir, int role) const {
        const std::size_t at = roles_[std::size_t(layer * num_directions() + dir) * kRoles + role];
        return at ? slab + (at - 1) : nullptr;
    }
};

extern template class Recurrent<float>;
extern template class Recurrent<double>;

}  // namespace v0
}  // namespace rnnkit
