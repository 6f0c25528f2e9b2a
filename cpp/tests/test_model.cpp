// C++ Model: streaming equals whole-sequence prediction, save/load round trips, and hostile files throw.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "rnnkit/rnnkit.hpp"

using rnnkit::Activation;
using rnnkit::CellKind;
using rnnkit::LayerConfig;
using rnnkit::Model;

namespace {

LayerConfig cfg(CellKind kind, int I, int H, int L, bool peephole = false) {
    LayerConfig c;
    c.kind = kind;
    c.input_size = I;
    c.hidden_size = H;
    c.num_layers = L;
    c.peephole = peephole;
    c.seed = 3;
    return c;
}

std::vector<float> random_input(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d;
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

std::string temp_path(const std::string& name) {
    return (::testing::TempDir().empty() ? std::string("/tmp/") : ::testing::TempDir()) + "rnnkit_" + name;
}

std::vector<char> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

void write_all(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

Model forecaster(bool batch_first) {
    Model m;
    m.add_recurrent(cfg(CellKind::LSTM, 2, 8, 2, true), batch_first);
    m.add_dropout(0.1);
    m.add_recurrent(cfg(CellKind::GRU, 8, 6, 1), batch_first);
    m.add_last_step();
    m.add_dense(6, 3, Activation::Tanh, true, 5);
    return m;
}

TEST(Model, StreamingEqualsWholeSequence) {
    Model m = forecaster(false);
    const int T = 9, B = 3, I = 2;
    auto x = random_input(std::size_t(T) * B * I, 1);
    auto state = m.new_state(B);
    std::vector<float> y_t(std::size_t(B) * 3);
    for (int t = 0; t < T; ++t) {
        m.step(&x[std::size_t(t) * B * I], state, y_t.data());
        // the whole-sequence prediction of the sequence cut after step t
        std::vector<float> y(m.output_elements(t + 1, B));
        m.predict(x.data(), t + 1, B, y.data());
        for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y_t[i], y[i], 1e-6) << "t=" << t << " i=" << i;
    }
}

// Streaming m step by step equals predicting the whole sequence (within tol), and a save / load round trip
// predicts the same numbers; x is [T, B, I].
void expect_streams_and_round_trips(Model& m, const std::vector<float>& x, int T, int B, int I, double tol,
                                    const std::string& label) {
    const int O = m.output_size();
    std::vector<float> y(m.output_elements(T, B));
    m.predict(x.data(), T, B, y.data());
    auto state = m.new_state(B);
    std::vector<float> y_t(std::size_t(B) * O);
    for (int t = 0; t < T; ++t) {
        m.step(&x[std::size_t(t) * B * I], state, y_t.data());
        for (int i = 0; i < B * O; ++i) EXPECT_NEAR(y_t[i], y[std::size_t(t) * B * O + i], tol) << label << " t=" << t;
    }
    const std::string path = temp_path("round_trip.safetensors");
    m.save(path);
    Model back = Model::load(path);
    std::vector<float> y2(y.size());
    back.predict(x.data(), T, B, y2.data());
    EXPECT_EQ(y, y2) << label;
    std::remove(path.c_str());
}

// The LSTM family from C++: variants built from the JSON configs Python writes stream as they predict, save and
// load, and a bad option in a config names itself.
TEST(Model, VariantsStreamSaveAndLoad) {
    const char* configs[] = {
        R"({"input_size": 3, "hidden_size": 6, "proj_size": 2, "peephole": true})",
        R"({"input_size": 3, "hidden_size": 6, "forget_gate": false, "activation": ["leaky_relu", 0.1]})",
        R"({"input_size": 3, "hidden_size": 6, "layer_norm": true, "num_layers": 2})",
        R"({"input_size": 3, "hidden_size": 6, "full_gate_recurrence": true, "peephole": true})",
        R"({"input_size": 3, "hidden_size": 6, "zoneout": 0.3, "zoneout_cell": 0.2, "cell_clip": 0.5})",
    };
    const int T = 7, B = 2, I = 3;
    auto x = random_input(std::size_t(T) * B * I, 4);
    for (const char* config : configs) {
        Model m;
        m.add_layer("LSTM", config);
        expect_streams_and_round_trips(m, x, T, B, I, 1e-6, config);
    }
    Model ind;
    ind.add_layer("IndRNN", R"({"input_size": 3, "hidden_size": 4, "nonlinearity": "relu", "recurrent_clip": 1.5})");
    EXPECT_EQ(ind.output_size(), 4);
    Model bad;
    EXPECT_THROW(bad.add_layer("LSTM", R"({"input_size": 3, "hidden_size": 6, "zoneout": 1.5})"), std::invalid_argument);
    EXPECT_THROW(bad.add_layer("GRU", R"({"input_size": 3, "hidden_size": 6, "proj_size": 2})"), std::invalid_argument);
    EXPECT_THROW(bad.add_layer("LSTM", R"({"input_size": 3, "hidden_size": 6, "activation": "gelu"})"),
                 std::invalid_argument);
}

// The modern cells from C++ (configs as Python writes them): streaming equals the whole sequence, files round-trip.
TEST(Model, ModernCellsStreamSaveAndLoad) {
    const std::pair<const char*, const char*> layers[] = {
        {"sLSTM", R"({"input_size": 3, "hidden_size": 8, "num_heads": 2, "num_layers": 2})"},
        {"mLSTM", R"({"input_size": 3, "hidden_size": 8, "num_heads": 4})"},
        {"minGRU", R"({"input_size": 3, "hidden_size": 6, "num_layers": 2})"},
        {"minLSTM", R"({"input_size": 3, "hidden_size": 6})"},
    };
    const int T = 80, B = 2, I = 3;  // T > 32: inference runs in chunks of 32 steps, states carried between
    auto x = random_input(std::size_t(T) * B * I, 5);
    for (const auto& [cls, config] : layers) {
        Model m;
        m.add_layer(cls, config);
        expect_streams_and_round_trips(m, x, T, B, I, 1e-5, cls);
    }
    Model bad;
    EXPECT_THROW(bad.add_layer("sLSTM", R"({"input_size": 3, "hidden_size": 6, "num_heads": 4})"), std::invalid_argument);
    EXPECT_THROW(bad.add_layer("minGRU", R"({"input_size": 3, "hidden_size": 6, "recurrent_dropout": 0.5})"),
                 std::invalid_argument);
}

TEST(Model, PerStepModelStreamsEveryOutput) {
    Model m;
    m.add_recurrent(cfg(CellKind::RNN_TANH, 3, 5, 2), true);
    m.add_dense(5, 2);
    const int T = 6, B = 2, I = 3, O = 2;
    auto x = random_input(std::size_t(T) * B * I, 2);  // batch-first (B, T, I)
    std::vector<float> y(m.output_elements(T, B));
    m.predict(x.data(), T, B, y.data());
    auto state = m.new_state(B);
    std::vector<float> x_t(std::size_t(B) * I), y_t(std::size_t(B) * O);
    for (int t = 0; t < T; ++t) {
        for (int b = 0; b < B; ++b)
            for (int i = 0; i < I; ++i) x_t[b * I + i] = x[(std::size_t(b) * T + t) * I + i];
        m.step(x_t.data(), state, y_t.data());
        for (int b = 0; b < B; ++b)
            for (int o = 0; o < O; ++o)
                EXPECT_NEAR(y_t[b * O + o], y[(std::size_t(b) * T + t) * O + o], 1e-6);
    }
}

TEST(Model, BidirectionalCannotStream) {
    Model m;
    LayerConfig c = cfg(CellKind::LSTM, 2, 3, 1);
    c.bidirectional = true;
    m.add_recurrent(c);
    EXPECT_THROW(m.new_state(1), std::logic_error);
}

TEST(Model, SaveLoadRoundTrip) {
    Model m = forecaster(true);
    const std::string path = temp_path("roundtrip.safetensors");
    m.save(path);
    Model back = Model::load(path);
    ASSERT_EQ(back.parameter_names(), m.parameter_names());
    const int T = 5, B = 2;
    auto x = random_input(std::size_t(T) * B * 2, 3);
    std::vector<float> a(m.output_elements(T, B)), b(back.output_elements(T, B));
    const int lengths[] = {5, 3};
    m.predict(x.data(), T, B, a.data(), lengths);
    back.predict(x.data(), T, B, b.data(), lengths);
    EXPECT_EQ(a, b);
    std::remove(path.c_str());
}

class HostileFile : public ::testing::Test {
protected:
    std::string good = temp_path("good.safetensors"), bad = temp_path("bad.safetensors");
    std::vector<char> bytes;
    void SetUp() override {
        forecaster(false).save(good);
        bytes = read_all(good);
        ASSERT_GT(bytes.size(), 64u);
    }
    void TearDown() override {
        std::remove(good.c_str());
        std::remove(bad.c_str());
    }
    void expect_rejected(const std::vector<char>& data, const char* what) {
        write_all(bad, data);
        EXPECT_THROW(Model::load(bad), std::invalid_argument) << what;
    }
};

TEST_F(HostileFile, Truncated) {
    for (std::size_t n : {std::size_t(0), std::size_t(4), std::size_t(8), std::size_t(20), bytes.size() / 2,
                          bytes.size() - 1})
        expect_rejected(std::vector<char>(bytes.begin(), bytes.begin() + std::ptrdiff_t(n)), "truncated");
}

TEST_F(HostileFile, OversizedHeaderLength) {
    for (std::uint64_t len : {std::uint64_t(bytes.size()), std::uint64_t(1) << 40, ~std::uint64_t(0)}) {
        auto data = bytes;
        for (int k = 0; k < 8; ++k) data[k] = char((len >> (8 * k)) & 0xFF);
        expect_rejected(data, "oversized header length");
    }
}

TEST_F(HostileFile, BitFlipsAnywhere) {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 200; ++trial) {
        auto data = bytes;
        const std::size_t at = rng() % data.size();
        data[at] = char(data[at] ^ (1 << (rng() % 8)));
        write_all(bad, data);
        try {
            Model::load(bad);
            // A flip inside the header's padding spaces can leave an equivalent file: then it must load the
            // same model. Anything else must throw.
            ASSERT_GE(at, 8u) << "flip at " << at;
            ASSERT_TRUE(bytes[at] == ' ' || data[at] == ' ' || bytes[at] == '\t' || data[at] == '\t' ||
                        bytes[at] == '\n' || data[at] == '\n' || bytes[at] == '\r' || data[at] == '\r')
                << "a flip at byte " << at << " was accepted";
        } catch (const std::invalid_argument&) {
        }
    }
}

TEST_F(HostileFile, MissingFileAndGarbage) {
    EXPECT_THROW(Model::load(temp_path("does_not_exist.safetensors")), std::invalid_argument);
    std::vector<char> garbage(1000);
    std::mt19937 rng(5);
    for (auto& c : garbage) c = char(rng());
    expect_rejected(garbage, "random bytes");
}

}  // namespace
