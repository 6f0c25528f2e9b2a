// The layer stack on a batch whose lengths are not in decreasing order: it runs sorted by length (so a
// driver's products skip the rows that have ended) and the caller's order is restored on return.
// Shape legend and gradient rule: see rnnkit/config.hpp.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "cpu/workspace.hpp"
#include "nn/record.hpp"

namespace rnnkit {
inline namespace v0 {

using detail::States;

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
void Recurrent<S>::forward_sorted(S* y, S* const* state_n, const S* x, const S* const* state0, const int* lengths,
                                  int T, int B, bool training) {
    const int SL = config_.num_layers * num_directions(), H = config_.hidden_size, I = config_.input_size;
    const int Y = output_size(), NS = num_states_;  // (each state gets room for the widest)
    std::vector<int> order(B), sorted(B);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [lengths](int a, int b) { return lengths[a] > lengths[b]; });
    for (int i = 0; i < B; ++i) sorted[i] = lengths[order[i]];
    int room = H;  // the widest state
    for (int k = 0; k < NS; ++k) room = std::max(room, state_size(k));
    const std::size_t TB = std::size_t(T) * B, SB = std::size_t(SL) * B * room;
    detail::Scratch<S> mem;
    S* xs = mem.take(TB * (I + Y) + 2 * NS * SB);  // x, y, then per state its initial and final [L*D, B, H]
    S* ys = xs + TB * I;
    States<const S*> init_s;
    States<S*> fin_s;
    for (int k = 0; k < NS; ++k) {
        S* i0 = ys + TB * Y + 2 * k * SB;
        if (state0[k]) permute_rows(i0, state0[k], order, SL, state_size(k), true), init_s.at[k] = i0;
        if (state_n[k]) fin_s.at[k] = i0 + SB;
    }
    permute_rows(xs, x, order, T, I, true);
    forward_checked(ys, fin_s.at, xs, init_s.at, sorted.data(), T, B, training);
    permute_rows(y, ys, order, T, Y, false);
    for (int k = 0; k < NS; ++k)
        if (state_n[k]) permute_rows(state_n[k], fin_s.at[k], order, SL, state_size(k), false);
    if (training) tape_.back()->order = std::move(order);
}


template <class S>
void Recurrent<S>::backward_sorted(S* dx, S* const* dstate0, const S* dy, const S* const* dstate_n) {
    const std::vector<int> order = tape_.back()->order;
    const int T = tape_.back()->T, B = tape_.back()->B;
    const int SL = config_.num_layers * num_directions(), H = config_.hidden_size, I = config_.input_size;
    const int Y = output_size(), NS = num_states_;  // (each state gets room for the widest)
    int room = H;  // the widest state
    for (int k = 0; k < NS; ++k) room = std::max(room, state_size(k));
    const std::size_t TB = std::size_t(T) * B, SB = std::size_t(SL) * B * room;
    detail::Scratch<S> mem;
    S* dys = mem.take(TB * (I + Y) + 2 * NS * SB);  // dy, dx, then per state its final and initial gradients
    S* dxs = dys + TB * Y;
    States<const S*> dn_s;
    States<S*> d0_s;
    for (int k = 0; k < NS; ++k) {
        S* dn = dxs + TB * I + 2 * k * SB;
        if (dstate_n[k]) permute_rows(dn, dstate_n[k], order, SL, state_size(k), true), dn_s.at[k] = dn;
        if (dstate0[k]) d0_s.at[k] = dn + SB;
    }
    permute_rows(dys, dy, order, T, Y, true);
    backward_checked(dxs, d0_s.at, dys, dn_s.at);
    permute_rows(dx, dxs, order, T, I, false);
    for (int k = 0; k < NS; ++k)
        if (dstate0[k]) permute_rows(dstate0[k], d0_s.at[k], order, SL, state_size(k), false);
}


template void Recurrent<float>::forward_sorted(float*, float* const*, const float*, const float* const*, const int*, int,
                                               int, bool);
template void Recurrent<double>::forward_sorted(double*, double* const*, const double*, const double* const*,
                                                const int*, int, int, bool);
template void Recurrent<float>::backward_sorted(float*, float* const*, const float*, const float* const*);
template void Recurrent<double>::backward_sorted(double*, double* const*, const double*, const double* const*);

}  // namespace v0
}  // namespace rnnkit
