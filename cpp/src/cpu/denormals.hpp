// Flush-to-zero / denormals-are-zero for the duration of a kernel call. Denormal floats (which long
// recurrences produce as gates saturate) are up to hundreds of times slower on some CPUs (pytorch issue
// 81634); treating them as zero changes results only below 1e-38. The calling thread's and the OpenMP
// workers' previous modes are restored afterwards, so user code running later is unaffected.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define RNNKIT_HAVE_MXCSR 1
#endif

namespace rnnkit {
inline namespace v0 {
namespace detail {

class DenormalGuard {
public:
    DenormalGuard() {
#ifdef RNNKIT_HAVE_MXCSR
        saved_ = set_flags();
#pragma omp parallel
        worker_saved() = set_flags();
#endif
    }
    ~DenormalGuard() {
#ifdef RNNKIT_HAVE_MXCSR
#pragma omp parallel
        _mm_setcsr(worker_saved());
        _mm_setcsr(saved_);
#endif
    }
    DenormalGuard(const DenormalGuard&) = delete;
    DenormalGuard& operator=(const DenormalGuard&) = delete;

private:
#ifdef RNNKIT_HAVE_MXCSR
    static constexpr unsigned kFlags = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
    static unsigned set_flags() {
        const unsigned old = _mm_getcsr();
        _mm_setcsr(old | kFlags);
        return old;
    }
    static unsigned& worker_saved() {
        static thread_local unsigned value = 0;
        return value;
    }
    unsigned saved_ = 0;
#endif
};

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
