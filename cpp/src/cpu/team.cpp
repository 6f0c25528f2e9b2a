#include "cpu/team.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "rnnkit/config.hpp"

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

namespace {

// The budget: 0 until set or first read (then OpenMP's default for the process: OMP_NUM_THREADS, else the CPUs).
std::atomic<int> g_budget{0};

int budget() {
    int b = g_budget.load(std::memory_order_relaxed);
    if (b > 0) return b;
#ifdef RNNKIT_HAVE_OPENMP
    static const int initial = std::max(1, omp_get_max_threads());
#else
    static const int initial = 1;
#endif
    int expected = 0;
    g_budget.compare_exchange_strong(expected, initial);
    return g_budget.load(std::memory_order_relaxed);
}

struct Pool {
    std::mutex mutex;
    std::condition_variable freed;
    int in_use = 0;   // threads taken by running calls
    int callers = 0;  // calls running or waiting
    // The thread of the last call to start, and when calls last came from a different thread than the one
    // before. Python threads taking turns on the GIL (or on a model's lock) reach the kernels one at a time, so
    // `callers` alone would hand each a full team while the others run Python code on the same CPUs, and a
    // team's barrier then waits out a descheduled member (12x slower measured: 8 threads on 2 CPUs). Calls
    // within kContended of such a switch count as contended; one thread calling alone never is.
    std::thread::id last_thread{};
    std::chrono::steady_clock::time_point last_switch{};
};

constexpr std::chrono::milliseconds kContended{50};

Pool& pool() {
    static Pool p;
    return p;
}

thread_local int g_depth = 0;  // KernelThreads guards alive on this thread

}  // namespace

KernelThreads::KernelThreads() {
    if (g_depth++ > 0) return;
    Pool& p = pool();
    {
        std::unique_lock<std::mutex> lock(p.mutex);
        ++p.callers;
        p.freed.wait(lock, [&] { return p.in_use < budget(); });
        const int b = budget();
        const auto now = std::chrono::steady_clock::now();
        if (p.last_thread != std::this_thread::get_id()) {
            if (p.last_thread != std::thread::id()) p.last_switch = now;
            p.last_thread = std::this_thread::get_id();
        }
        const bool contended = p.callers > 1 || now - p.last_switch < kContended;
        // alone: the whole budget; contended: a fair share of what is free (one thread each on a small budget)
        taken_ = std::max(1, std::min(b - p.in_use, contended ? b / std::max(2, p.callers) : b));
        p.in_use += taken_;
    }
#ifdef RNNKIT_HAVE_OPENMP
    previous_ = omp_get_max_threads();
    omp_set_num_threads(taken_);
#endif
}

KernelThreads::~KernelThreads() {
    --g_depth;
    if (taken_ == 0) return;
#ifdef RNNKIT_HAVE_OPENMP
    omp_set_num_threads(previous_);
#endif
    Pool& p = pool();
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        p.in_use -= taken_;
        --p.callers;
    }
    p.freed.notify_all();
}

UnitRange join_team(TeamBarrier& step_end, int H, int grain) {
#pragma omp single
    step_end.set_threads(team_size());
    return my_units(H, grain);
}

}  // namespace detail

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("n: expected a positive number of threads, got " + std::to_string(n));
#ifdef RNNKIT_HAVE_OPENMP
    detail::g_budget.store(n, std::memory_order_relaxed);
#endif
    detail::pool().freed.notify_all();  // a larger budget may let waiting calls start
}

int get_num_threads() { return detail::budget(); }

}  // namespace v0
}  // namespace rnnkit
