// libFuzzer harness: rnnkit::Model::load on arbitrary bytes (a model file is untrusted input). Every input must
// load or throw std::invalid_argument; anything else (a crash, a sanitizer report, another exception, a hang) is a
// finding. Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which skips the checksum so mutations reach the
// JSON, the tensor table and the model config behind it. Loaded models also predict one short sequence.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "rnnkit/rnnkit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = "/tmp/rnnkit-fuzz-" + std::to_string(getpid()) + ".safetensors";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        rnnkit::Model model = rnnkit::Model::load(path);
        const int T = 3, B = 2;
        if (model.input_size() > 0 && model.input_size() <= 4096) {
            std::vector<float> x(std::size_t(T) * B * model.input_size(), 0.5f);
            std::vector<float> y(model.output_elements(T, B));
            model.predict(x.data(), T, B, y.data());
        }
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
