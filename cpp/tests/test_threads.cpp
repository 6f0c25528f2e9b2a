// Threads: Model::predict and Model::step on one model from eight std::threads give the single-thread results;
// layers trained on several threads at once give the bits of training them one after another; the kernel-thread
// budget (rnnkit::set_num_threads) is shared by concurrent callers. Run under ThreadSanitizer by .ci/run.
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "rnnkit/rnnkit.hpp"

using rnnkit::CellKind;
using rnnkit::LayerConfig;
using rnnkit::Model;

namespace {

constexpr int kThreads = 8;

std::vector<float> random_input(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d;
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

LayerConfig config(CellKind kind, int I, int H, int L) {
    LayerConfig c;
    c.kind = kind;
    c.input_size = I;
    c.hidden_size = H;
    c.num_layers = L;
    c.seed = 5;
    return c;
}

template <class F>
void on_threads(int n, F&& work) {
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) threads.emplace_back(work, i);
    for (auto& t : threads) t.join();
}

Model small_model() {
    Model m;
    m.add_recurrent(config(CellKind::LSTM, 6, 48, 2), /*batch_first=*/true);
    m.add_dense(48, 3);
    return m;
}

}  // namespace

TEST(Threads, PredictOnOneModelFromEightThreads) {
    Model m = small_model();
    const int T = 30, B = 4;
    std::vector<std::vector<float>> xs, expected;
    for (int i = 0; i < kThreads; ++i) {
        xs.push_back(random_input(std::size_t(B) * T * 6, 10 + i));
        expected.emplace_back(m.output_elements(T, B));
        m.predict(xs.back().data(), T, B, expected.back().data());
    }
    std::vector<std::vector<float>> got(kThreads, std::vector<float>(m.output_elements(T, B)));
    std::vector<int> lengths(B, T);
    lengths[1] = 7;
    on_threads(kThreads, [&](int i) {
        std::vector<float> with_lengths(m.output_elements(T, B));
        for (int rep = 0; rep < 5; ++rep) {
            m.predict(xs[i].data(), T, B, got[i].data());
            m.predict(xs[i].data(), T, B, with_lengths.data(), lengths.data());
        }
    });
    for (int i = 0; i < kThreads; ++i) EXPECT_EQ(got[i], expected[i]) << "thread " << i;
}

TEST(Threads, StreamingOnOneModelFromEightThreads) {
    Model m = small_model();
    const int T = 12, B = 2;
    std::vector<std::vector<float>> xs(kThreads), whole(kThreads);
    for (int i = 0; i < kThreads; ++i) {
        xs[i] = random_input(std::size_t(T) * B * 6, 40 + i);
        whole[i].resize(m.output_elements(T, B));
        m.predict(xs[i].data(), T, B, whole[i].data());
    }
    std::vector<std::vector<float>> last(kThreads, std::vector<float>(std::size_t(B) * 3));
    on_threads(kThreads, [&](int i) {
        Model::State state = m.new_state(B);
        std::vector<float> x_t(std::size_t(B) * 6);
        for (int t = 0; t < T; ++t) {
            for (int b = 0; b < B; ++b)
                for (int f = 0; f < 6; ++f) x_t[std::size_t(b) * 6 + f] = xs[i][(std::size_t(b) * T + t) * 6 + f];
            m.step(x_t.data(), state, last[i].data());
        }
    });
    for (int i = 0; i < kThreads; ++i)  // the last step of each sequence: whole is [B, T, 3]
        for (int b = 0; b < B; ++b)
            for (int o = 0; o < 3; ++o)
                EXPECT_NEAR(last[i][std::size_t(b) * 3 + o], whole[i][(std::size_t(b) * T + T - 1) * 3 + o], 1e-5f)
                    << "thread " << i;
}

// One layer per thread, trained at once: each gives the bits it gives when trained alone.
TEST(Threads, TrainingSeparateLayersAtOnceMatchesOneAfterAnother) {
    const int T = 20, B = 8, I = 5, H = 32;
    auto train = [&](int i, std::vector<float>& grads) {
        rnnkit::Recurrent<float> net(config(i % 2 ? CellKind::GRU : CellKind::LSTM, I, H, 2));
        const auto x = random_input(std::size_t(T) * B * I, 70 + i);
        std::vector<float> y(std::size_t(T) * B * H), dx(x.size());
        for (int step = 0; step < 3; ++step) {
            net.forward(y.data(), nullptr, x.data(), nullptr, nullptr, T, B, true);
            net.backward(dx.data(), nullptr, y.data(), nullptr);  // loss = |y|^2 / 2
        }
        grads.assign(net.grad_data(), net.grad_data() + net.num_parameters());
    };
    std::vector<std::vector<float>> alone(kThreads), together(kThreads);
    for (int i = 0; i < kThreads; ++i) train(i, alone[i]);
    on_threads(kThreads, [&](int i) { train(i, together[i]); });
    for (int i = 0; i < kThreads; ++i) EXPECT_EQ(together[i], alone[i]) << "thread " << i;
}

// The budget is process-wide: set on one thread, read on another; concurrent callers share it.
TEST(Threads, BudgetIsProcessWide) {
    const int before = rnnkit::get_num_threads();
    rnnkit::set_num_threads(3);
    const int here = rnnkit::get_num_threads();  // 3 (1 in a build without OpenMP)
    int seen = 0;
    std::thread([&] { seen = rnnkit::get_num_threads(); }).join();
    rnnkit::set_num_threads(before);
    EXPECT_EQ(seen, here);
    EXPECT_THROW(rnnkit::set_num_threads(0), std::invalid_argument);
}
