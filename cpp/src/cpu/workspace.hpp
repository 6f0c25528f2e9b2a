// Scratch memory for the kernels, kept between calls.
//
// A kernel's temporaries (packed weight panels, the input projection of a chunk, gradient buffers) used to
// be fresh std::vectors on every call. Fresh memory above malloc's mmap threshold arrives as new pages: the
// page faults and the zeroing cost more than the arithmetic of a short, single-sequence inference call.
// A Scratch takes memory from a stack owned by the calling thread instead: uninitialised, 64-byte aligned,
// returned when the Scratch ends and kept for the thread's next call (its high-water mark stays allocated
// until the thread exits or calls rnnkit::release_scratch()). Being per thread, concurrent calls from
// different threads never share it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace rnnkit {
inline namespace v0 {
namespace detail {

class ScratchStack {
public:
    static ScratchStack& of_this_thread() {
        thread_local ScratchStack stack;
        return stack;
    }

    struct Mark {
        std::size_t block, used;
    };
    Mark mark() const { return Mark{current_, used_}; }

    void* take(std::size_t bytes) {
        bytes = (bytes + kAlign - 1) / kAlign * kAlign;
        while (current_ < blocks_.size() && used_ + bytes > blocks_[current_].size) {
            ++current_;  // the rest of this block stays unused until the stack unwinds past it
            used_ = 0;
        }
        if (current_ == blocks_.size()) blocks_.push_back(Block::make(std::max(bytes, total())));
        void* p = blocks_[current_].data.get() + used_;
        used_ += bytes;
        return p;
    }

    // Back to `m`. When the stack is empty again after spilling into several blocks, they are merged into
    // one block of their total size, so the next call of the same shape fits in one.
    void release(Mark m) {
        current_ = m.block;
        used_ = m.used;
        if (current_ == 0 && used_ == 0 && blocks_.size() > 1) {
            const std::size_t size = total();
            blocks_.clear();
            blocks_.push_back(Block::make(size));
        }
    }

    // Bytes kept for this thread's next calls, and giving them back (only between calls: nothing taken).
    std::size_t kept_bytes() const { return total(); }
    void release_kept() {
        if (current_ == 0 && used_ == 0) blocks_.clear();
    }

private:
    static constexpr std::size_t kAlign = 64;
    struct Free {
        void operator()(unsigned char* p) const { std::free(p); }
    };
    struct Block {
        std::unique_ptr<unsigned char[], Free> data;
        std::size_t size;
        static Block make(std::size_t size) {
            auto* p = static_cast<unsigned char*>(std::aligned_alloc(kAlign, size));
            if (p == nullptr) throw std::bad_alloc();
            return Block{std::unique_ptr<unsigned char[], Free>(p), size};
        }
    };
    std::size_t total() const {
        std::size_t n = 0;
        for (const auto& b : blocks_) n += b.size;
        return n;
    }
    std::vector<Block> blocks_;
    std::size_t current_ = 0, used_ = 0;
};

// Memory taken from the calling thread's ScratchStack for this object's lifetime (scopes nest).
template <class S>
class Scratch {
public:
    Scratch() : stack_(ScratchStack::of_this_thread()), mark_(stack_.mark()) {}
    ~Scratch() { stack_.release(mark_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    S* take(std::size_t n) { return static_cast<S*>(stack_.take(sizeof(S) * (n ? n : 1))); }

private:
    ScratchStack& stack_;
    ScratchStack::Mark mark_;
};

// Refuses a buffer of `bytes` larger than this machine's physical memory before allocating it: throws
// std::invalid_argument "<what> needs X GiB, more than the Y GiB of memory this machine has<advice>" (a
// ValueError in Python) instead of a std::bad_alloc deep inside, or the OOM killer after overcommit. bytes is a
// double so that computing it cannot overflow.
void require_memory(double bytes, const std::string& what, const std::string& advice = "");

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit
