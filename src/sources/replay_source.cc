// The replay source: recorded fetches loaded from a folder, replayed one tick
// per file in `seq` order with `now` = the recording's end.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "converge/sources.h"

#ifndef CONVERGE_TSAN
#include <tbb/parallel_for.h>
#endif

namespace converge {
namespace {

namespace fs = std::filesystem;

struct LoadedFetch {
  std::string path;
  RecordedFetch fetch;
};

// Lists the regular *.json files of `dir`, sorted by path so that errors and
// ties do not depend on directory order.
absl::StatusOr<std::vector<std::string>> ListJsonFiles(const std::string& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) {
    return absl::NotFoundError(
        absl::StrCat("replay folder ", dir, " not found"));
  }
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(
        absl::StrCat("replay folder ", dir, " is not a folder"));
  }

  std::vector<std::string> paths;
  fs::directory_iterator it(dir, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    if (it->path().extension() == ".json" && it->is_regular_file(error)) {
      paths.push_back(it->path().string());
    }
  }
  if (error) {
    return absl::NotFoundError(absl::StrCat(
        "failed to list replay folder ", dir, ": ", error.message()));
  }
  if (paths.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "replay folder ", dir, " contains no *.json recorded fetches"));
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

absl::StatusOr<RecordedFetch> LoadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to open recorded fetch ", path));
  }
  const std::string text((std::istreambuf_iterator<char>(file)),
                         std::istreambuf_iterator<char>());
  if (file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to read recorded fetch ", path));
  }

  absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(text);
  if (!fetch.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", fetch.status().message()));
  }
  return fetch;
}

// Loads and parses every file. Files are independent, so large replays parse
// in parallel. Returns the error of the first failing file by path.
absl::StatusOr<std::vector<LoadedFetch>> LoadFiles(
    const std::vector<std::string>& paths) {
  std::vector<absl::StatusOr<RecordedFetch>> results(
      paths.size(), absl::UnknownError("not loaded"));
  const auto load = [&](size_t i) { results[i] = LoadFile(paths[i]); };
#ifdef CONVERGE_TSAN
  // Debian's libtbb is not instrumented for ThreadSanitizer.
  for (size_t i = 0; i < paths.size(); ++i) load(i);
#else
  tbb::parallel_for(size_t{0}, paths.size(), load);
#endif

  std::vector<LoadedFetch> loaded;
  loaded.reserve(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!results[i].ok()) return results[i].status();
    loaded.push_back({paths[i], *std::move(results[i])});
  }
  return loaded;
}

// Sorts by `seq` and rejects a `seq` that two files share.
absl::Status OrderBySeq(std::vector<LoadedFetch>* fetches) {
  std::stable_sort(fetches->begin(), fetches->end(),
                   [](const LoadedFetch& a, const LoadedFetch& b) {
                     return a.fetch.seq < b.fetch.seq;
                   });
  for (size_t i = 1; i < fetches->size(); ++i) {
    const LoadedFetch& previous = (*fetches)[i - 1];
    const LoadedFetch& current = (*fetches)[i];
    if (previous.fetch.seq == current.fetch.seq) {
      return absl::InvalidArgumentError(absl::StrCat(
          current.path, ": seq ", current.fetch.seq, " is also used by ",
          previous.path, "; every recorded fetch needs its own seq"));
    }
  }
  return absl::OkStatus();
}

class ReplaySource final : public Source {
 public:
  explicit ReplaySource(std::vector<RecordedFetch> fetches)
      : fetches_(std::move(fetches)) {}

  std::string_view name() const override { return "replay"; }

  std::optional<TickPlan> NextTick(std::stop_token stop) override {
    if (stop.stop_requested() || next_ >= fetches_.size()) return std::nullopt;

    const RecordedFetch& fetch = fetches_[next_];
    FetchTask task;
    task.tick = next_;
    task.index = 0;
    task.lane = Lane::kReplay;
    task.range = {fetch.start, fetch.end};
    // Every recorded fetch covers the same zones, so they share partition 0
    // and the engine gets one stream. The file is found by its tick.
    task.partition = 0;
    task.now = fetch.end;

    TickPlan plan;
    plan.tick = next_;
    plan.now = fetch.end;
    plan.tasks.push_back(task);
    ++next_;
    return plan;
  }

  absl::Status Fetch(const FetchTask& task, ObservationBatch* out) override {
    if (task.tick >= fetches_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "replay fetch: tick ", task.tick, " has no recorded fetch (",
          fetches_.size(), " recorded fetches)"));
    }
    for (const Observation& observation : fetches_[task.tick].observations) {
      out->Add(observation);
    }
    return absl::OkStatus();
  }

 private:
  // Constant after construction, so any fetcher thread may read it.
  const std::vector<RecordedFetch> fetches_;  // in seq order

  // Scheduler thread only.
  size_t next_ = 0;  // index of the next file to plan
};

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> MakeReplaySource(
    const ReplayOptions& options) {
  absl::StatusOr<std::vector<std::string>> paths = ListJsonFiles(options.dir);
  if (!paths.ok()) return paths.status();
  absl::StatusOr<std::vector<LoadedFetch>> loaded = LoadFiles(*paths);
  if (!loaded.ok()) return loaded.status();
  absl::Status status = OrderBySeq(&*loaded);
  if (!status.ok()) return status;

  std::vector<RecordedFetch> fetches;
  fetches.reserve(loaded->size());
  for (LoadedFetch& file : *loaded) fetches.push_back(std::move(file.fetch));
  return std::make_unique<ReplaySource>(std::move(fetches));
}

}  // namespace converge
