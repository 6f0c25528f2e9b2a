// The vectorised float activations against libm in double, over the whole useful range.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cells/activations.hpp"

using rnnkit::detail::fast_exp;
using rnnkit::detail::fast_tanh;
using rnnkit::detail::sigmoid;

TEST(Activations, FastExpIsAccurate) {
    double worst = 0;
    for (double x = -80; x <= 80; x += 0.00137) {
        const float f = float(x);
        const double want = std::exp(double(f));
        worst = std::max(worst, std::fabs(double(fast_exp(f)) - want) / want);
    }
    EXPECT_LT(worst, 3e-7);
}

TEST(Activations, FastTanhAndSigmoidAreAccurate) {
    double worst_tanh = 0, worst_sigmoid = 0;
    for (double x = -30; x <= 30; x += 0.000917) {
        const float f = float(x);
        worst_tanh = std::max(worst_tanh, std::fabs(double(fast_tanh(f)) - std::tanh(double(f))));
        const double s = 1.0 / (1.0 + std::exp(-double(f)));
        worst_sigmoid = std::max(worst_sigmoid, std::fabs(double(sigmoid(f)) - s) / s);
    }
    EXPECT_LT(worst_tanh, 2e-7);
    EXPECT_LT(worst_sigmoid, 5e-7);
    EXPECT_EQ(fast_tanh(0.0f), 0.0f);
    EXPECT_EQ(fast_tanh(100.0f), 1.0f);
    EXPECT_EQ(fast_tanh(-100.0f), -1.0f);
    EXPECT_GE(sigmoid(-200.0f), 0.0f);
    EXPECT_EQ(sigmoid(200.0f), 1.0f);
}

namespace {
TEST(Activations, FastLogAndLogSigmoidAreAccurate) {
    using rnnkit::detail::fast_log;
    using rnnkit::detail::log_sigmoid;
    for (float x = 1e-30f; x < 1e30f; x *= 1.37f)
        EXPECT_NEAR(fast_log(x), std::log(double(x)), 3e-7 * std::max(1.0, std::fabs(std::log(double(x))))) << x;
    for (float x = -60.0f; x <= 60.0f; x += 0.01f) {
        const double expected = log_sigmoid(double(x));
        EXPECT_NEAR(log_sigmoid(x), expected, 2e-7 * std::max(1.0, std::fabs(expected))) << x;
    }
}
}  // namespace

namespace {
// Found by fuzz/model_load_fuzzer.cpp: a model file with NaN weights made fast_exp convert NaN to an integer.
TEST(Activations, NaNPropagatesWithoutUndefinedBehaviour) {
    const float nan = std::nanf("");
    EXPECT_TRUE(std::isnan(rnnkit::detail::fast_exp(nan)));
    EXPECT_TRUE(std::isnan(rnnkit::detail::fast_log(nan)));
    EXPECT_TRUE(std::isnan(rnnkit::detail::sigmoid(nan)));
    EXPECT_TRUE(std::isnan(rnnkit::detail::log_sigmoid(nan)));
    EXPECT_EQ(rnnkit::detail::fast_exp(-1000.0f), rnnkit::detail::fast_exp(-87.0f));
}
}  // namespace
