// Backfill progress lines for a source's log.
//
// Thread safety: none. The scheduler thread owns it, as it owns the planner.

#ifndef CONVERGE_SOURCES_BACKFILL_PROGRESS_H_
#define CONVERGE_SOURCES_BACKFILL_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "converge/lanes.h"
#include "converge/source.h"

namespace converge {

class BackfillProgress {
 public:
  // `source` names the source in log lines, e.g. "sim".
  explicit BackfillProgress(std::string_view source) : source_(source) {}

  // Reports how `task` ended to `planner`, then logs the backfill progress
  // if the task finished a chunk. A simulated run can finish many chunks per
  // wall second, so only the first and the last chunk always get a line, and
  // the others at most one line per 10 seconds.
  void OnTaskDone(LanePlanner& planner, const FetchTask& task, bool ok) {
    const uint64_t done_before = planner.backfill_chunks_done();
    planner.OnTaskDone(task, ok);
    const uint64_t done = planner.backfill_chunks_done();
    if (done == done_before) return;

    constexpr auto kInterval = std::chrono::seconds(10);
    const uint64_t total = planner.backfill_chunks_total();
    const auto now = std::chrono::steady_clock::now();
    if (done != 1 && done != total && now - last_line_ < kInterval) return;
    last_line_ = now;
    spdlog::info("{} source: backfill {}/{} chunks done", source_, done,
                 total);
  }

 private:
  const std::string source_;
  std::chrono::steady_clock::time_point last_line_;
};

}  // namespace converge

#endif  // CONVERGE_SOURCES_BACKFILL_PROGRESS_H_
