// Every registered cell x {reference, CPU team} x {float, double}: forward and BPTT of a 2-layer bidirectional
// stack with unsorted lengths, initial states and recurrent dropout agree by normalised error
// (mse(a, b) / mse(b, 0)). The Python twin, tests/test_drivers.py, adds every compiled ISA core and finite
// differences. Cells without a reference driver are checked against the CPU driver on one thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "rnnkit/rnnkit.hpp"

namespace {

using rnnkit::Backend;
using rnnkit::CellInfo;
using rnnkit::LayerConfig;

template <class S>
double nmse(const std::vector<S>& a, const std::vector<S>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
        den += double(b[i]) * double(b[i]);
    }
    return den > 0 ? num / den : num;
}

template <class S>
struct Outcome {
    std::vector<std::vector<S>> tensors;  // y, final states, dx, initial-state gradients, parameter gradients
};

template <class S>
Outcome<S> run(const LayerConfig& config, int T, int B, bool single_thread) {
    rnnkit::Recurrent<S> net(config);
    const int NS = net.num_states(), LD = config.num_layers * net.num_directions(), H = config.hidden_size;
    const std::size_t out = std::size_t(T) * B * net.num_directions() * H;
    auto state = [&](int k) { return std::size_t(LD) * B * net.state_size(k); };  // (mLSTM: C, n, m widths)
    std::mt19937_64 engine(11);
    std::normal_distribution<double> normal;
    auto draw = [&](std::size_t n) {
        std::vector<S> v(n);
        for (auto& e : v) e = S(normal(engine));
        return v;
    };
    const auto x = draw(std::size_t(T) * B * config.input_size), dy = draw(out);
    std::vector<std::vector<S>> init, dfinal;
    const S* init_p[rnnkit::kMaxStates] = {};
    const S* dfinal_p[rnnkit::kMaxStates] = {};
    for (int k = 0; k < NS; ++k) {
        init.push_back(draw(state(k)));
        dfinal.push_back(draw(state(k)));
    }
    if (config.kind == rnnkit::CellKind::SLSTM)  // the normaliser n is a sum of positive input gates
        for (auto& e : init[2]) e = std::abs(e) + S(0.5);
    for (int k = 0; k < NS; ++k) init_p[k] = init[k].data(), dfinal_p[k] = dfinal[k].data();
    std::vector<int> lengths(B);
    for (int b = 0; b < B; ++b) lengths[b] = 1 + (b * 7) % T;
    lengths[1] = T;
    Outcome<S> o;
    o.tensors.emplace_back(out);
    std::vector<std::vector<S>> finals, dinit;
    for (int k = 0; k < NS; ++k) finals.emplace_back(state(k)), dinit.emplace_back(state(k));
    S* finals_p[rnnkit::kMaxStates] = {};
    S* dinit_p[rnnkit::kMaxStates] = {};
    for (int k = 0; k < NS; ++k) finals_p[k] = finals[k].data(), dinit_p[k] = dinit[k].data();
    std::vector<S> dx(x.size());
    const int threads = rnnkit::get_num_threads();
    if (single_thread) rnnkit::set_num_threads(1);
    net.forward(o.tensors[0].data(), finals_p, x.data(), init_p, lengths.data(), T, B, true);
    net.backward(dx.data(), dinit_p, dy.data(), dfinal_p);
    rnnkit::set_num_threads(threads);
    for (auto& f : finals) o.tensors.push_back(f);
    o.tensors.push_back(dx);
    for (auto& d : dinit) o.tensors.push_back(d);
    o.tensors.emplace_back(net.grad_data(), net.grad_data() + net.num_parameters());
    return o;
}

template <class S>
void compare(const CellInfo& cell, bool option, double limit) {
    LayerConfig c;
    c.kind = cell.kind;
    c.input_size = 24;
    c.hidden_size = 64;  // B*H*G >= 2^16: a team of threads over packed operands
    c.num_layers = 2;
    c.bidirectional = true;
    c.recurrent_dropout = std::string(cell.recurrence) == "none" ? 0.0 : 0.25;  // (no recurrent weights)
    c.seed = 3;
    for (const auto& o : cell.options) {
        if (o == "peephole") c.peephole = option;
        if (o == "linear_before_reset") c.linear_before_reset = !option;
        if (o == "num_heads") c.num_heads = option ? 4 : 1;
    }
    const bool has_reference = std::count(cell.backends.begin(), cell.backends.end(), "reference") > 0;
    LayerConfig ref = c;
    ref.backend = has_reference ? Backend::Reference : Backend::Cpu;
    const auto expected = run<S>(ref, 9, 16, !has_reference);
    const auto actual = run<S>(c, 9, 16, false);
    ASSERT_EQ(expected.tensors.size(), actual.tensors.size());
    for (std::size_t i = 0; i < actual.tensors.size(); ++i)
        EXPECT_LT(nmse(actual.tensors[i], expected.tensors[i]), limit)
            << cell.name << (option ? " with its option" : "") << ", tensor " << i;
}

TEST(Drivers, EveryRegisteredCellMatchesTheReference) {
    ASSERT_GE(rnnkit::registered_cells().size(), 4u);
    for (const CellInfo* cell : rnnkit::registered_cells())
        for (bool option : {false, true}) {
            if (option && cell->options.empty()) continue;
            compare<float>(*cell, option, 1e-10);
            compare<double>(*cell, option, 1e-24);
        }
}

TEST(Drivers, UnknownBackendsAndKindsAreClearErrors) {
    LayerConfig c;
    c.input_size = 2;
    c.hidden_size = 3;
    c.backend = Backend::Cuda;
    EXPECT_THROW(rnnkit::Recurrent<float>{c}, std::invalid_argument);
    EXPECT_THROW(rnnkit::parse_backend("tpu"), std::invalid_argument);
    EXPECT_THROW(rnnkit::cell_kind("lstn"), std::invalid_argument);
    EXPECT_EQ(rnnkit::cell_kind("gru"), rnnkit::CellKind::GRU);
    EXPECT_STREQ(rnnkit::to_string(rnnkit::CellKind::RNN_RELU), "rnn_relu");
}

}  // namespace
