// libFuzzer harness: rnnkit's JSON reader (model file headers and configs) on arbitrary text. Every input must
// parse or throw std::invalid_argument.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "io/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        rnnkit::json::parse(text);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
