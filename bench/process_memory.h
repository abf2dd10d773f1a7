// Resident memory of the benchmark process, read from /proc/self/status.
//
// Linux only. A peak measured this way covers the whole process: run a
// memory benchmark alone (--benchmark_filter) so that memory freed by an
// earlier benchmark and still cached by the allocator does not hide growth.

#ifndef CONVERGE_BENCH_PROCESS_MEMORY_H_
#define CONVERGE_BENCH_PROCESS_MEMORY_H_

#include <cstdint>
#include <fstream>
#include <string>

namespace converge::bench {

// Returns a field of /proc/self/status such as "VmRSS" or "VmHWM" in bytes,
// or 0 when it cannot be read.
inline uint64_t ReadProcStatusBytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return std::stoull(line.substr(prefix.size())) * 1024;  // in kB
    }
  }
  return 0;
}

// Resets VmHWM (the peak resident set) to the current VmRSS. Returns false
// when the kernel refuses, in which case VmHWM keeps the process-wide peak.
inline bool ResetPeakRss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

}  // namespace converge::bench

#endif  // CONVERGE_BENCH_PROCESS_MEMORY_H_
