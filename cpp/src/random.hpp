// Seeded, platform-independent random numbers for parameter initialisation and dropout masks.
#pragma once

#include <cstdint>
#include <random>

namespace rnnkit {
inline namespace v0 {
namespace detail {

// splitmix64 of a combined key: decorrelates (seed, counter) pairs into engine seeds.
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
    std::uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 53 bits of a standard-defined engine: identical on every platform.
inline double uniform01(std::mt19937_64& engine) { return double(engine() >> 11) * 0x1.0p-53; }

// Inverted dropout mask: 0 with probability p, else 1 / (1 - p).
template <class S>
inline void draw_dropout_mask(S* mask, std::size_t n, double p, std::mt19937_64& engine) {
    const S scale = S(1.0 / (1.0 - p));
    for (std::size_t i = 0; i < n; ++i) mask[i] = uniform01(engine) < p ? S(0) : scale;
}

// Zoneout masks: 1 (keep the previous value) with probability p, else 0.
template <class S>
inline void draw_keep_mask(S* mask, std::size_t n, double p, std::mt19937_64& engine) {
    for (std::size_t i = 0; i < n; ++i) mask[i] = uniform01(engine) < p ? S(1) : S(0);
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
