#include "cpu/team.hpp"

#include <algorithm>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#ifdef RNNKIT_HAVE_OPENMP
#include <omp.h>
#endif

namespace rnnkit {
inline namespace v0 {
namespace detail {

int available_cpus() {
    static const int cpus = [] {
#if defined(__linux__)
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
        return std::max(1, int(std::thread::hardware_concurrency()));
    }();
    return cpus;
}

int team_size() {
#ifdef RNNKIT_HAVE_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

int team_rank() {
#ifdef RNNKIT_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

UnitRange my_units(int H, int grain) {
#ifdef RNNKIT_HAVE_OPENMP
    const int threads = omp_get_num_threads(), id = omp_get_thread_num();
#else
    const int threads = 1, id = 0;
#endif
    const int blocks = (H + grain - 1) / grain;
    const int b0 = int(long(blocks) * id / threads), b1 = int(long(blocks) * (id + 1) / threads);
    return UnitRange{std::min(H, b0 * grain), std::min(H, b1 * grain)};
}

UnitRange join_team(TeamBarrier& step_end, int H, int grain) {
#pragma omp single
    step_end.set_threads(team_size());
    return my_units(H, grain);
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
