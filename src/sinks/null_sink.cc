// The null sink: accepts and discards every batch, for benchmarks.

#include <cstdint>

#include <spdlog/spdlog.h>

#include "converge/sinks.h"

namespace converge {
namespace {

class NullSink final : public Sink {
 public:
  std::string_view name() const override { return "null"; }

  absl::Status Push(std::span<const Sample> batch) override {
    ++batches_;
    samples_ += batch.size();
    return absl::OkStatus();
  }

  // Logs the totals, the only trace the discarded samples leave.
  absl::Status Close() override {
    spdlog::info("null sink: discarded {} samples in {} batches", samples_,
                 batches_);
    return absl::OkStatus();
  }

 private:
  uint64_t batches_ = 0;
  uint64_t samples_ = 0;
};

}  // namespace

std::unique_ptr<Sink> MakeNullSink() { return std::make_unique<NullSink>(); }

}  // namespace converge
