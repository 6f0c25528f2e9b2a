// Decode with a Seq2Seq model saved by Python (`model.save("s2s.safetensors")`), from an embedded C++ program:
// reads one source sentence per line of stdin as space-separated token ids, decodes the lines together (greedy,
// or beam search with --beam K), and prints per sentence the output token ids, then " | " and the score.
//   ./seq2seq_decode s2s.safetensors [--beam K] [--alpha A] [--max-length N] < sources.txt
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "rnnkit/seq2seq.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " model.safetensors [--beam K] [--alpha A] [--max-length N] < ids.txt\n";
        return 2;
    }
    int beam = 1, max_length = -1;
    double alpha = 0.0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--beam") beam = std::stoi(argv[i + 1]);
        else if (flag == "--alpha") alpha = std::stod(argv[i + 1]);
        else if (flag == "--max-length") max_length = std::stoi(argv[i + 1]);
        else { std::cerr << "unknown option " << flag << "\n"; return 2; }
    }
    try {
        rnnkit::Seq2SeqModel model = rnnkit::Seq2SeqModel::load(argv[1]);
        const std::int64_t pad = model.config().pad_id;
        std::vector<std::vector<std::int64_t>> lines;
        std::string line;
        while (std::getline(std::cin, line)) {
            std::istringstream in(line);
            std::vector<std::int64_t> ids;
            for (std::int64_t id; in >> id;) ids.push_back(id);
            if (!ids.empty()) lines.push_back(ids);
        }
        if (lines.empty()) return 0;
        std::size_t S = 0;
        for (const auto& l : lines) S = std::max(S, l.size());
        // [B, S] padded with pad_id, and each sentence's length
        std::vector<std::int64_t> src(lines.size() * S, pad);
        std::vector<int> lengths(lines.size());
        for (std::size_t b = 0; b < lines.size(); ++b) {
            std::copy(lines[b].begin(), lines[b].end(), src.begin() + b * S);
            lengths[b] = int(lines[b].size());
        }
        if (max_length < 0) max_length = 2 * int(S) + 10;  // Python's default
        const auto out = model.decode(src.data(), lengths.data(), int(S), int(lines.size()), beam, beam == 1,
                                      max_length, alpha, false);
        for (std::size_t b = 0; b < lines.size(); ++b) {
            for (std::size_t i = 0; i < out.tokens[b].size(); ++i) std::cout << (i ? " " : "") << out.tokens[b][i];
            std::printf(" | %.9g\n", out.scores[b]);
        }
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
