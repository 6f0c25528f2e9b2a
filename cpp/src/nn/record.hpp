// Inside the layer stack (nn/recurrent.cpp, nn/recurrent_sorted.cpp): the record one training forward keeps
// for its backward, and a fixed array of per-state pointers.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "rnnkit/recurrent.hpp"

namespace rnnkit {
inline namespace v0 {

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
    std::vector<std::size_t> gates;    // per (layer, direction): [T, B, saved*H]
    std::vector<std::size_t> state;    // per (layer, direction, state): [T+1, B, H] slots
    std::vector<std::size_t> m;        // per (layer, direction) with a projection: [T, B, H] the cell outputs
    std::vector<std::size_t> zmask;    // per (layer, direction, state) when zoneout: [T, B, H] 0/1 (1 = keep); or empty
    const int* lengths_or_null() const { return lengths.empty() ? nullptr : lengths.data(); }
};

namespace detail {

// Up to kMaxStates pointers, each into its own [L*D, B, H] tensor, or all null.
template <class P>
struct States {
    P at[kMaxStates] = {};
    States() = default;
    States(P const* given, int n) {
        for (int k = 0; given && k < n; ++k) at[k] = given[k];
    }
};

}  // namespace detail

}  // namespace v0
}  // namespace rnnkit
