// Teams of threads that own hidden units for a whole sequence: which units a thread owns, and the barrier
// that ends a time step.
//
// A step of a small single-sequence product lasts a few microseconds; OpenMP's barrier costs a noticeable
// part of that (single-sequence inference ran about 9% faster with TeamBarrier). TeamBarrier is a counter
// barrier with a generation number: the last thread to arrive advances the generation, the others spin on
// it (with a pause instruction) and then yield the CPU. With more threads than CPUs they yield almost at
// once: spinning keeps the thread they wait for off its CPU (150x slower measured with 3 threads on 2
// CPUs). Release/acquire ordering publishes every write made before the barrier (the new state h) to the
// threads leaving it.
#pragma once

#include <atomic>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace rnnkit {
inline namespace v0 {
namespace detail {

// The hidden units [u0, u1) the calling thread owns inside a parallel region: blocks of `grain` units
// split evenly over the team (all units when called outside one).
struct UnitRange {
    int u0, u1;
};
UnitRange my_units(int H, int grain);

// Threads in the calling thread's parallel region (1 outside one), and the calling thread's index in it.
int team_size();
int team_rank();

class TeamBarrier;

// Called by every thread at the start of a team's parallel region: sizes `step_end` for the team (one thread
// does, the others wait for it) and returns the hidden units [0, H) this thread owns, in blocks of `grain`.
UnitRange join_team(TeamBarrier& step_end, int H, int grain);

// CPUs this process may run on (its affinity mask where the OS tells, else the hardware's count).
int available_cpus();

// The process-wide budget of kernel threads (rnnkit::set_num_threads) shared by every concurrent caller.
// Each public entry point that computes (a layer's forward or backward, Model::predict/step, ...) holds one
// for the duration of the call: the outermost one on a thread takes 1 to budget threads (a fair share when
// several callers want them; it waits while none is free) and sets the calling thread's OpenMP team size to
// what it took; nested ones take nothing. So eight threads calling predict at once run on the budget's
// threads, not eight teams on the same CPUs. Results do not depend on how many threads a call gets.
class KernelThreads {
public:
    KernelThreads();
    ~KernelThreads();
    KernelThreads(const KernelThreads&) = delete;
    KernelThreads& operator=(const KernelThreads&) = delete;

private:
    int taken_ = 0;     // 0: a nested guard
    int previous_ = 1;  // the calling thread's OpenMP team size before
};

class TeamBarrier {
public:
    // Called by one thread of the team, followed by a barrier of the team (e.g. `omp single`).
    void set_threads(int threads) {
        threads_ = threads;
        spin_limit_ = threads > available_cpus() ? 16 : (1L << 14);
    }

    void arrive_and_wait() {
        if (threads_ <= 1) return;
        const unsigned gen = generation_.load(std::memory_order_relaxed);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
            arrived_.store(0, std::memory_order_relaxed);
            generation_.store(gen + 1, std::memory_order_release);
            return;
        }
        for (long spins = 0; generation_.load(std::memory_order_acquire) == gen; ++spins) {
            if (spins < spin_limit_) {
#if defined(__x86_64__) || defined(_M_X64)
                _mm_pause();
#endif
            } else {
                std::this_thread::yield();
            }
        }
    }

private:
    int threads_ = 1;
    long spin_limit_ = 0;
    alignas(64) std::atomic<int> arrived_{0};
    alignas(64) std::atomic<unsigned> generation_{0};
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
