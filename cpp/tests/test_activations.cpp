// The vectorised float activations against libm in double, over the whole useful range.
#include <gtest/gtest.h>

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
