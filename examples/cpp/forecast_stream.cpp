// Streams a CSV column through a forecaster saved by Python (`rnnkit train` / `rnnkit demo`) and prints,
// for every position with a full input window, the forecast of the next `horizon` values.
//
// The forecaster sees each window relative to its last value and divided by `scale` (both stored in the
// model file's metadata); each window is fed one step at a time through Model::step from a fresh state,
// which gives exactly what Python's model.predict gives for that window.
//
// usage: forecast_stream MODEL.safetensors DATA.csv COLUMN [--last N]
// output: one line per window: "<index of the window's last value>,<forecast t+1>,...,<forecast t+horizon>"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <rnnkit/rnnkit.hpp>

namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (char ch : line) {
        if (ch == '"') quoted = !quoted;
        else if (ch == ',' && !quoted) {
            cells.push_back(cell);
            cell.clear();
        } else if (ch != '\r') cell += ch;
    }
    cells.push_back(cell);
    return cells;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The numeric column `column`; empty cells are filled by linear interpolation, leading/trailing gaps dropped
// (the same rule as rnnkit.forecast.read_series).
std::vector<double> read_column(const std::string& path, const std::string& column) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::string line;
    if (!std::getline(in, line)) throw std::runtime_error(path + " is empty");
    const auto header = split_csv_line(line);
    std::size_t k = header.size();
    for (std::size_t i = 0; i < header.size(); ++i)
        if (trim(header[i]) == column) k = i;
    if (k == header.size()) throw std::runtime_error("column '" + column + "' is not in " + path);
    std::vector<double> values;
    while (std::getline(in, line)) {
        const auto cells = split_csv_line(line);
        const std::string cell = k < cells.size() ? trim(cells[k]) : "";
        values.push_back(cell.empty() ? NAN : std::stod(cell));
    }
    std::vector<std::size_t> known;
    for (std::size_t i = 0; i < values.size(); ++i)
        if (std::isfinite(values[i])) known.push_back(i);
    if (known.size() < 2) throw std::runtime_error("column '" + column + "' has fewer than two numbers");
    for (std::size_t j = 0; j + 1 < known.size(); ++j)
        for (std::size_t i = known[j] + 1; i < known[j + 1]; ++i) {
            const double w = double(i - known[j]) / double(known[j + 1] - known[j]);
            values[i] = values[known[j]] + w * (values[known[j + 1]] - values[known[j]]);
        }
    return std::vector<double>(values.begin() + std::ptrdiff_t(known.front()),
                               values.begin() + std::ptrdiff_t(known.back()) + 1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL.safetensors DATA.csv COLUMN [--last N]\n", argv[0]);
        return 2;
    }
    try {
        rnnkit::Model model = rnnkit::Model::load(argv[1]);
        const int lookback = int(model.metadata_number("forecaster.lookback"));
        const int horizon = int(model.metadata_number("forecaster.horizon"));
        const double scale = model.metadata_number("forecaster.scale");
        if (model.input_size() != 1 || model.output_size() != horizon)
            throw std::runtime_error("the model is not a univariate forecaster");
        const std::vector<double> series = read_column(argv[2], argv[3]);
        std::size_t first = std::size_t(lookback - 1);
        if (argc >= 6 && std::string(argv[4]) == "--last") {
            const std::size_t last = std::size_t(std::atol(argv[5]));
            if (last < series.size() - first) first = series.size() - last;
        }
        if (series.size() < std::size_t(lookback)) throw std::runtime_error("the series is shorter than lookback");

        std::vector<float> x_t(1), y_t(static_cast<std::size_t>(horizon));
        for (std::size_t end = first; end < series.size(); ++end) {
            const double last = series[end];
            auto state = model.new_state(1);
            for (std::size_t i = end + 1 - std::size_t(lookback); i <= end; ++i) {
                x_t[0] = float((series[i] - last) / scale);
                model.step(x_t.data(), state, y_t.data());
            }
            std::printf("%zu", end);
            for (int k = 0; k < horizon; ++k) std::printf(",%.9g", last + double(y_t[static_cast<std::size_t>(k)]) * scale);
            std::printf("\n");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forecast_stream: %s\n", e.what());
        return 1;
    }
    return 0;
}
