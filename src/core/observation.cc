#include "converge/observation.h"

#include "converge/engine.h"
#include "converge/source.h"

namespace converge {

std::string_view SampleCauseName(SampleCause cause) {
  switch (cause) {
    case SampleCause::kStable:
      return "stable";
    case SampleCause::kForced:
      return "forced";
    case SampleCause::kFlushed:
      return "flushed";
  }
  return "unknown";
}

std::string_view LaneName(Lane lane) {
  switch (lane) {
    case Lane::kLive:
      return "live";
    case Lane::kBackfill:
      return "backfill";
    case Lane::kReplay:
      return "replay";
    case Lane::kGap:
      return "gap";
  }
  return "unknown";
}

void EngineStats::Add(const EngineStats& other) {
  open_windows += other.open_windows;
  trackers += other.trackers;
  series += other.series;
  observations += other.observations;
  samples_stable += other.samples_stable;
  samples_forced += other.samples_forced;
  samples_flushed += other.samples_flushed;
  post_stabilization_updates += other.post_stabilization_updates;
  down_revisions += other.down_revisions;
  late_dropped += other.late_dropped;
}

}  // namespace converge
