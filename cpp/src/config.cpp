#include "rnnkit/config.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cpu/workspace.hpp"
#include "rnnkit/cells.hpp"

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

namespace rnnkit {
inline namespace v0 {

int gate_count(CellKind kind) { return cell_info(kind).gates; }

const char* to_string(Backend backend) {
    switch (backend) {
        case Backend::Cpu: return "cpu";
        case Backend::Reference: return "reference";
        case Backend::Cuda: return "cuda";
    }
    return "?";
}

Backend parse_backend(const std::string& name) {
    for (Backend b : {Backend::Cpu, Backend::Reference, Backend::Cuda})
        if (name == to_string(b)) return b;
    throw std::invalid_argument("backend: expected 'cpu', 'reference' or 'cuda', got '" + name + "'");
}

void validate(const LayerConfig& c) {
    auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
    if (c.input_size < 1) fail("input_size: expected a positive integer, got " + std::to_string(c.input_size));
    if (c.hidden_size < 1) fail("hidden_size: expected a positive integer, got " + std::to_string(c.hidden_size));
    if (c.num_layers < 1) fail("num_layers: expected a positive integer, got " + std::to_string(c.num_layers));
    if (!(c.dropout >= 0.0 && c.dropout < 1.0))
        fail("dropout: expected a probability in [0, 1), got " + std::to_string(c.dropout));
    if (!(c.recurrent_dropout >= 0.0 && c.recurrent_dropout < 1.0))
        fail("recurrent_dropout: expected a probability in [0, 1), got " + std::to_string(c.recurrent_dropout));
    const CellInfo& cell = cell_info(c.kind);  // throws for an unregistered kind
    auto has_option = [&cell](const char* option) {
        return std::find(cell.options.begin(), cell.options.end(), option) != cell.options.end();
    };
    if (c.peephole && !has_option("peephole"))
        fail(std::string("peephole: only an LSTM has peephole connections, got kind '") + cell.name + "'");
    if (int(c.backend) < 0 || int(c.backend) > int(Backend::Cuda)) fail("backend: unknown backend");
    if (c.cell && (c.num_layers != 1 || c.bidirectional))
        fail("cell: a cell has one layer and one direction");
}

const char* instruction_set() {
#if defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__)
    return "avx2";
#else
    return "baseline";
#endif
}

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("n: expected a positive number of threads, got " + std::to_string(n));
#ifdef RNNKIT_HAVE_OPENMP
    omp_set_num_threads(n);
#endif
}

std::size_t scratch_bytes() { return detail::ScratchStack::of_this_thread().kept_bytes(); }

void release_scratch() { detail::ScratchStack::of_this_thread().release_kept(); }

int get_num_threads() {
#ifdef RNNKIT_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

}  // namespace v0
}  // namespace rnnkit
