// The allocator for containers on the engine's hot path.
//
// oneTBB's scalable allocator keeps per-thread pools, so shard threads that
// grow and release windows at the same time do not contend on one heap lock.
// ThreadSanitizer builds use the standard allocator instead: tbbmalloc is not
// instrumented, and memory it hands from one thread to another would show up
// as false races.

#ifndef CONVERGE_CORE_HOT_ALLOCATOR_H_
#define CONVERGE_CORE_HOT_ALLOCATOR_H_

#include <memory>

#ifndef CONVERGE_TSAN
#include <tbb/scalable_allocator.h>
#endif

namespace converge {

#ifdef CONVERGE_TSAN
template <typename T>
using HotAllocator = std::allocator<T>;
#else
template <typename T>
using HotAllocator = tbb::scalable_allocator<T>;
#endif

}  // namespace converge

#endif  // CONVERGE_CORE_HOT_ALLOCATOR_H_
