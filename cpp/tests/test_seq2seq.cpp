// Seq2Seq in C++ alone: training reduces the loss on a copy task, beam width 1 equals greedy, the attention rows
// of decoding sum to one over the source and are zero beyond it, save/load round trips, and bad input throws.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "rnnkit/rnnkit.hpp"

namespace {

rnnkit::Seq2SeqConfig small(rnnkit::CellKind cell, rnnkit::AttentionKind kind) {
    rnnkit::Seq2SeqConfig c;
    c.src_vocab = c.tgt_vocab = 8;
    c.embed_size = 8;
    c.hidden_size = 16;
    c.cell = cell;
    c.attention_kind = kind;
    c.seed = 5;
    return c;
}

// Copy task: target = source tokens then end (2); ids 3..7; lengths 1..S.
void copy_batch(std::mt19937& rng, int B, int S, std::vector<std::int64_t>& src, std::vector<int>& sl,
                std::vector<std::int64_t>& tgt, std::vector<int>& tl) {
    src.assign(std::size_t(B) * S, 0);
    tgt.assign(std::size_t(B) * (S + 1), 0);
    sl.resize(B);
    tl.resize(B);
    for (int b = 0; b < B; ++b) {
        sl[b] = 1 + int(rng() % S);
        tl[b] = sl[b] + 1;
        for (int s = 0; s < sl[b]; ++s) src[std::size_t(b) * S + s] = tgt[std::size_t(b) * (S + 1) + s] = 3 + rng() % 5;
        tgt[std::size_t(b) * (S + 1) + sl[b]] = 2;
    }
}

}  // namespace

TEST(Seq2Seq, TrainingReducesTheLossAndBeamOneIsGreedy) {
    for (auto cell : {rnnkit::CellKind::LSTM, rnnkit::CellKind::GRU})
        for (auto kind : {rnnkit::AttentionKind::Bahdanau, rnnkit::AttentionKind::LuongGeneral}) {
            rnnkit::Seq2Seq<float> model(small(cell, kind));
            std::mt19937 rng(1);
            std::vector<std::int64_t> src, tgt;
            std::vector<int> sl, tl;
            const int B = 16, S = 5;
            double first = 0, last = 0;
            for (int step = 0; step < 60; ++step) {
                copy_batch(rng, B, S, src, sl, tgt, tl);
                const auto r = model.train_batch(src.data(), sl.data(), S, tgt.data(), tl.data(), S + 1, B, 1.0, 0.0, true);
                if (step == 0) first = r.loss;
                last = r.loss;
                for (auto& p : model.parameters())  // plain SGD
                    for (std::size_t i = 0; i < p.size; ++i) p.data[i] -= 0.5f * p.grad[i];
                model.zero_grad();
            }
            EXPECT_LT(last, 0.8 * first);
            copy_batch(rng, B, S, src, sl, tgt, tl);
            const auto g = model.decode(src.data(), sl.data(), S, B, 1, true, 8, 0.5, true);
            const auto b1 = model.decode(src.data(), sl.data(), S, B, 1, false, 8, 0.5, true);
            EXPECT_EQ(g.tokens, b1.tokens);
            for (int b = 0; b < B; ++b) {
                EXPECT_DOUBLE_EQ(g.scores[b], b1.scores[b]);
                const std::size_t steps = g.tokens[b].size() + g.ended[b];
                ASSERT_EQ(g.attention[b].size(), steps * S);
                for (std::size_t t = 0; t < steps; ++t) {
                    double sum = 0;
                    for (int s = 0; s < S; ++s) {
                        const float a = g.attention[b][t * S + s];
                        if (s >= sl[b]) EXPECT_EQ(a, 0.0f);
                        sum += a;
                    }
                    EXPECT_NEAR(sum, 1.0, 1e-5);
                }
            }
        }
}

TEST(Seq2Seq, SaveLoadRoundTripAndBadInput) {
    rnnkit::Seq2SeqModel model(small(rnnkit::CellKind::LSTM, rnnkit::AttentionKind::LuongConcat));
    const std::string path = ::testing::TempDir() + "rnnkit_s2s_test.safetensors";
    model.save(path);
    rnnkit::Seq2SeqModel again = rnnkit::Seq2SeqModel::load(path);
    EXPECT_EQ(again.config_json(), model.config_json());
    std::vector<std::int64_t> src = {3, 4, 5, 0, 6, 7, 3, 3};
    std::vector<int> sl = {3, 4};
    const auto a = model.decode(src.data(), sl.data(), 4, 2, 3, false, 6, 0.0, false);
    const auto b = again.decode(src.data(), sl.data(), 4, 2, 3, false, 6, 0.0, false);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.scores, b.scores);
    std::remove(path.c_str());
    EXPECT_THROW(rnnkit::Seq2SeqModel::load(path), std::invalid_argument);
    std::vector<std::int64_t> bad = {3, 4, 99, 0};
    EXPECT_THROW(model.decode(bad.data(), nullptr, 4, 1, 1, true, 5, 0.0, false), std::invalid_argument);
    std::vector<int> long_len = {5};
    EXPECT_THROW(model.decode(src.data(), long_len.data(), 4, 1, 1, true, 5, 0.0, false), std::invalid_argument);
    rnnkit::Seq2SeqConfig c = small(rnnkit::CellKind::LSTM, rnnkit::AttentionKind::LuongDot);
    EXPECT_THROW(rnnkit::Seq2SeqModel{c}, std::invalid_argument);  // bidirectional keys are 2H wide
    c.start_id = c.pad_id;
    c.bidirectional_encoder = false;
    EXPECT_THROW(rnnkit::Seq2SeqModel{c}, std::invalid_argument);
}
