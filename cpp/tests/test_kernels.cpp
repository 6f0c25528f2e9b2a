// C++ checks of the recurrent kernels without Python: forward against naive per-cell formulas, and every
// gradient against float64 central finite differences, for each cell kind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "rnnkit/rnnkit.hpp"

using rnnkit::CellKind;
using rnnkit::LayerConfig;
using rnnkit::Recurrent;

namespace {

struct Kind {
    const char* name;
    CellKind kind;
    bool peephole;
    bool linear_before_reset;
};
const Kind kKinds[] = {{"lstm", CellKind::LSTM, false, true},     {"peephole", CellKind::LSTM, true, true},
                       {"gru", CellKind::GRU, false, true},       {"gru_cho", CellKind::GRU, false, false},
                       {"rnn_tanh", CellKind::RNN_TANH, false, true}, {"rnn_relu", CellKind::RNN_RELU, false, true}};

LayerConfig config_of(const Kind& k, int I, int H, int L = 1, bool bidirectional = false) {
    LayerConfig c;
    c.kind = k.kind;
    c.peephole = k.peephole;
    c.linear_before_reset = k.linear_before_reset;
    c.input_size = I;
    c.hidden_size = H;
    c.num_layers = L;
    c.bidirectional = bidirectional;
    c.seed = 42;
    return c;
}

std::vector<double> randn(std::size_t n, std::mt19937_64& rng, double scale = 1.0) {
    std::normal_distribution<double> d(0.0, scale);
    std::vector<double> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// One step of each cell, written naively from the formulas. W [G, I], R [G, H], b = b_ih, bh = b_hh.
void reference_step(const Kind& k, int I, int H, const double* W, const double* R, const double* b,
                    const double* bh, const double* P, const double* x, const double* h, const double* c,
                    double* h_out, double* c_out) {
    auto dot = [](const double* a, const double* v, int n) {
        double s = 0;
        for (int i = 0; i < n; ++i) s += a[i] * v[i];
        return s;
    };
    for (int j = 0; j < H; ++j) {
        if (k.kind == CellKind::LSTM) {
            auto pre = [&](int g) { return dot(W + (g * H + j) * I, x, I) + dot(R + (g * H + j) * H, h, H) + b[g * H + j] + bh[g * H + j]; };
            const double pi = P ? P[j] : 0, pf = P ? P[H + j] : 0, po = P ? P[2 * H + j] : 0;
            const double i = sigmoid(pre(0) + pi * c[j]), f = sigmoid(pre(1) + pf * c[j]), g = std::tanh(pre(2));
            c_out[j] = f * c[j] + i * g;
            h_out[j] = sigmoid(pre(3) + po * c_out[j]) * std::tanh(c_out[j]);
        } else if (k.kind == CellKind::GRU) {
            auto xin = [&](int g) { return dot(W + (g * H + j) * I, x, I) + b[g * H + j]; };
            auto hid = [&](int g, int row) { return dot(R + (g * H + row) * H, h, H) + bh[g * H + row]; };
            const double r = sigmoid(xin(0) + hid(0, j)), z = sigmoid(xin(1) + hid(1, j));
            double n;
            if (k.linear_before_reset) {
                n = std::tanh(xin(2) + r * hid(2, j));
            } else {  // R_n (r * h): every r_m multiplies its own h_m
                std::vector<double> rvec(H);
                for (int m = 0; m < H; ++m)
                    rvec[m] = sigmoid(dot(W + m * I, x, I) + b[m] + dot(R + m * H, h, H) + bh[m]);
                double s = bh[2 * H + j];
                for (int m = 0; m < H; ++m) s += R[(2 * H + j) * H + m] * rvec[m] * h[m];
                n = std::tanh(xin(2) + s);
            }
            h_out[j] = (1 - z) * n + z * h[j];
        } else {
            const double pre = dot(W + j * I, x, I) + dot(R + j * H, h, H) + b[j] + bh[j];
            h_out[j] = k.kind == CellKind::RNN_TANH ? std::tanh(pre) : std::max(pre, 0.0);
        }
    }
}

class CellKinds : public ::testing::TestWithParam<Kind> {};

TEST_P(CellKinds, OneStepMatchesTheFormulas) {
    const Kind k = GetParam();
    const int I = 3, H = 4, B = 2;
    Recurrent<double> layer(config_of(k, I, H));
    std::mt19937_64 rng(1);
    auto params = randn(layer.num_parameters(), rng, 0.5);
    std::copy(params.begin(), params.end(), layer.param_data());
    auto x = randn(std::size_t(B) * I, rng), h0 = randn(std::size_t(B) * H, rng), c0 = randn(std::size_t(B) * H, rng);
    std::vector<double> y(std::size_t(B) * H), hn(std::size_t(B) * H), cn(std::size_t(B) * H);
    const bool lstm = k.kind == CellKind::LSTM;
    layer.forward(y.data(), hn.data(), cn.data(), x.data(), h0.data(), lstm ? c0.data() : nullptr, nullptr, 1, B, false);
    const auto& info = layer.parameters();
    auto p = [&](const std::string& name) -> const double* {
        for (const auto& i : info)
            if (i.name == name) return layer.param_data() + i.offset;
        return nullptr;
    };
    for (int b = 0; b < B; ++b) {
        std::vector<double> h_ref(H), c_ref(H);
        reference_step(k, I, H, p("weight_ih_l0"), p("weight_hh_l0"), p("bias_ih_l0"), p("bias_hh_l0"),
                       p("weight_peephole_l0"), &x[b * I], &h0[b * H], &c0[b * H], h_ref.data(), c_ref.data());
        for (int j = 0; j < H; ++j) {
            EXPECT_NEAR(hn[b * H + j], h_ref[j], 1e-12) << k.name << " h b=" << b << " j=" << j;
            EXPECT_NEAR(y[b * H + j], h_ref[j], 1e-12);
            if (lstm) EXPECT_NEAR(cn[b * H + j], c_ref[j], 1e-12) << k.name << " c";
        }
    }
}

// L = Σ y * wy + Σ h_n * wh (+ Σ c_n * wc); checks dx, dh0, dc0 and every parameter gradient.
TEST_P(CellKinds, GradientsMatchFiniteDifferences) {
    const Kind k = GetParam();
    const int I = 3, H = 3, B = 2, T = 4, L = 2;
    Recurrent<double> layer(config_of(k, I, H, L, true));
    std::mt19937_64 rng(7);
    auto params = randn(layer.num_parameters(), rng, 0.4);
    if (k.kind == CellKind::RNN_RELU)  // keep pre-activations away from the kink
        for (auto& v : params) v = std::fabs(v) * 0.5;
    std::copy(params.begin(), params.end(), layer.param_data());
    const bool lstm = k.kind == CellKind::LSTM;
    const int D = 2, S = L * D;
    auto x = randn(std::size_t(T) * B * I, rng), h0 = randn(std::size_t(S) * B * H, rng, 0.5),
         c0 = randn(std::size_t(S) * B * H, rng, 0.5);
    if (k.kind == CellKind::RNN_RELU)
        for (auto& v : x) v = std::fabs(v) + 0.1;
    const std::vector<int> lengths = {4, 2};
    auto wy = randn(std::size_t(T) * B * D * H, rng), wh = randn(std::size_t(S) * B * H, rng),
         wc = randn(std::size_t(S) * B * H, rng);
    for (int t = 0; t < T; ++t)  // outputs past a sequence's end are 0: give them no weight
        for (int b = 0; b < B; ++b)
            if (t >= lengths[b])
                for (int j = 0; j < D * H; ++j) wy[(std::size_t(t) * B + b) * D * H + j] = 0;
    std::vector<double> y(std::size_t(T) * B * D * H), hn(std::size_t(S) * B * H), cn(std::size_t(S) * B * H);
    auto loss = [&] {
        layer.forward(y.data(), hn.data(), cn.data(), x.data(), h0.data(), lstm ? c0.data() : nullptr,
                      lengths.data(), T, B, false);
        double s = 0;
        for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * wy[i];
        for (std::size_t i = 0; i < hn.size(); ++i) s += hn[i] * wh[i] + (lstm ? cn[i] * wc[i] : 0.0);
        return s;
    };
    layer.forward(y.data(), hn.data(), cn.data(), x.data(), h0.data(), lstm ? c0.data() : nullptr, lengths.data(), T,
                  B, true);
    std::vector<double> dx(x.size()), dh0(h0.size()), dc0(c0.size());
    layer.zero_grad();
    layer.backward(dx.data(), dh0.data(), lstm ? dc0.data() : nullptr, wy.data(), wh.data(), lstm ? wc.data() : nullptr);
    const double eps = 1e-6;
    auto check = [&](std::vector<double>& v, const std::vector<double>& grad, const char* what) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            const double keep = v[i];
            v[i] = keep + eps;
            const double up = loss();
            v[i] = keep - eps;
            const double down = loss();
            v[i] = keep;
            EXPECT_NEAR((up - down) / (2 * eps), grad[i], 1e-6 * std::max(1.0, std::fabs(grad[i])))
                << k.name << " " << what << "[" << i << "]";
        }
    };
    check(x, dx, "dx");
    check(h0, dh0, "dh0");
    if (lstm) check(c0, dc0, "dc0");
    std::vector<double> p(layer.param_data(), layer.param_data() + layer.num_parameters());
    std::vector<double> g(layer.grad_data(), layer.grad_data() + layer.num_parameters());
    for (std::size_t i = 0; i < p.size(); ++i) {
        double* slot = layer.param_data() + i;
        const double keep = *slot;
        *slot = keep + eps;
        const double up = loss();
        *slot = keep - eps;
        const double down = loss();
        *slot = keep;
        EXPECT_NEAR((up - down) / (2 * eps), g[i], 1e-6 * std::max(1.0, std::fabs(g[i]))) << k.name << " param " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(All, CellKinds, ::testing::ValuesIn(kKinds),
                         [](const ::testing::TestParamInfo<Kind>& info) { return std::string(info.param.name); });

// Large enough that threads split the hidden units (one parallel region per sequence): a team of two must
// give what one thread gives, training (forward, backward) and inference, with lengths and recurrent dropout.
TEST_P(CellKinds, TeamOfThreadsMatchesOneThread) {
    const Kind k = GetParam();
    const int I = 20, H = 100, B = 7, T = 12, L = 2, D = 2, S = L * D;
    LayerConfig c = config_of(k, I, H, L, true);
    c.recurrent_dropout = 0.25;
    const bool lstm = k.kind == CellKind::LSTM;
    std::mt19937_64 rng(11);
    std::vector<float> x(std::size_t(T) * B * I), dy(std::size_t(T) * B * D * H), dhn(std::size_t(S) * B * H);
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (auto* v : {&x, &dy, &dhn})
        for (auto& e : *v) e = d(rng);
    const std::vector<int> lengths = {12, 5, 1, 12, 7, 11, 2};
    struct Result {
        std::vector<float> y, infer, dx, grads;
    };
    auto run = [&](int threads) {
        rnnkit::set_num_threads(threads);
        Recurrent<float> layer(c);
        Result r{std::vector<float>(dy.size()), std::vector<float>(dy.size()), std::vector<float>(x.size()), {}};
        std::vector<float> hn(dhn.size()), cn(dhn.size()), dh0(dhn.size()), dc0(dhn.size());
        layer.forward(r.infer.data(), hn.data(), cn.data(), x.data(), nullptr, nullptr, lengths.data(), T, B, false);
        layer.forward(r.y.data(), hn.data(), cn.data(), x.data(), nullptr, nullptr, lengths.data(), T, B, true);
        layer.backward(r.dx.data(), dh0.data(), lstm ? dc0.data() : nullptr, dy.data(), dhn.data(),
                       lstm ? dhn.data() : nullptr);
        r.grads.assign(layer.grad_data(), layer.grad_data() + layer.num_parameters());
        return r;
    };
    const int before = rnnkit::get_num_threads();
    const Result one = run(1), two = run(2);
    rnnkit::set_num_threads(before);
    auto expect_close = [&](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i)
            ASSERT_NEAR(a[i], b[i], 1e-5f * std::max(1.0f, std::fabs(a[i]))) << k.name << " " << what << "[" << i << "]";
    };
    expect_close(one.infer, two.infer, "inference y");
    expect_close(one.y, two.y, "training y");
    expect_close(one.dx, two.dx, "dx");
    expect_close(one.grads, two.grads, "grads");
}

TEST(Recurrent, BackwardWithoutForwardThrows) {
    Recurrent<float> layer(config_of(kKinds[0], 2, 2));
    std::vector<float> buf(16);
    EXPECT_THROW(layer.backward(buf.data(), buf.data(), buf.data(), buf.data(), nullptr, nullptr), std::logic_error);
}

TEST(Recurrent, BadConfigAndLengthsThrow) {
    LayerConfig c = config_of(kKinds[0], 2, 0);
    EXPECT_THROW(Recurrent<float>{c}, std::invalid_argument);
    Recurrent<float> layer(config_of(kKinds[0], 1, 1));
    std::vector<float> x(2), y(2), h(1), cc(1);
    const int bad[] = {3};
    EXPECT_THROW(layer.forward(y.data(), h.data(), cc.data(), x.data(), nullptr, nullptr, bad, 2, 1, false),
                 std::invalid_argument);
}

}  // namespace

TEST(Recurrent, ScratchIsKeptBetweenCallsAndReleased) {
    Recurrent<float> layer(config_of(kKinds[0], 64, 256));
    const int T = 40, B = 4;
    std::vector<float> x(std::size_t(T) * B * 64, 0.5f), y(std::size_t(T) * B * 256), again(y.size());
    layer.forward(y.data(), nullptr, nullptr, x.data(), nullptr, nullptr, nullptr, T, B, false);
    EXPECT_GE(rnnkit::scratch_bytes(), std::size_t(256) * 1024 * sizeof(float));  // packed R^T at least
    rnnkit::release_scratch();
    EXPECT_EQ(rnnkit::scratch_bytes(), 0u);
    layer.forward(again.data(), nullptr, nullptr, x.data(), nullptr, nullptr, nullptr, T, B, false);
    EXPECT_EQ(y, again);
}
