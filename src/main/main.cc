// converge-exporter: runs the pipeline from flags until its input ends or a
// SIGINT/SIGTERM arrives, then prints a one-line summary to stderr.
//
// Exit status: 0 after a clean run or stop, 1 when the run could not start
// (for example a missing replay folder or an unreachable output file),
// 2 for invalid flags.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include <fstream>

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include "converge/pipeline.h"
#include "converge/sinks.h"
#include "converge/sources.h"
#include "main/flags.h"
#include "main/logging.h"
#include "server/http_server.h"

namespace converge {
namespace {

constexpr char kVersion[] = CONVERGE_VERSION;

absl::StatusOr<std::unique_ptr<Source>> MakeSource(
    const ExporterConfig& config) {
  if (config.source == "replay") return MakeReplaySource(config.replay);
  if (config.source == "cloudflare") {
    return MakeCloudflareSource(config.cloudflare);
  }
  return MakeSimSource(config.sim);
}

absl::StatusOr<std::unique_ptr<Sink>> MakeSink(const ExporterConfig& config) {
  if (config.sink == "remote-write") {
    return MakeRemoteWriteSink(config.remote_write);
  }
  if (config.sink == "null") return MakeNullSink();
  return MakeFileSink(config.file_sink);
}

// Waits for SIGINT or SIGTERM on its own thread and requests a pipeline
// stop. The signals are blocked in every other thread, so this thread is the
// only one that receives them and no async-signal-safety limits apply.
class SignalWatcher {
 public:
  explicit SignalWatcher(Pipeline* pipeline) : pipeline_(pipeline) {
    thread_ = std::thread([this] { Watch(); });
  }

  ~SignalWatcher() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

  // Blocks the watched signals in the calling thread and in every thread it
  // starts afterwards. Call first thing in main().
  static void BlockSignals() {
    sigset_t set = Watched();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

 private:
  static sigset_t Watched() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);  // wakes the watcher to exit
    return set;
  }

  void Watch() {
    const sigset_t set = Watched();
    while (true) {
      int signal_number = 0;
      if (sigwait(&set, &signal_number) != 0) continue;
      if (signal_number == SIGUSR1) {
        if (done_.load()) return;
        continue;
      }
      spdlog::info("received {}, stopping: draining, flushing and delivering",
                   signal_number == SIGINT ? "SIGINT" : "SIGTERM");
      pipeline_->RequestStop();
    }
  }

  Pipeline* const pipeline_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int Main(int argc, char** argv) {
  SignalWatcher::BlockSignals();
  // A closed stdout pipe must turn into a failed write that the file sink
  // reports, not kill the process.
  signal(SIGPIPE, SIG_IGN);

  CommandLine command_line = ParseCommandLine(argc, argv);
  switch (command_line.action) {
    case CommandLine::Action::kPrintHelp:
      std::cout << HelpText();
      return 0;
    case CommandLine::Action::kPrintVersion:
      std::cout << "converge-exporter " << kVersion << "\n";
      return 0;
    case CommandLine::Action::kInvalid:
      std::cerr << "converge-exporter: " << command_line.error << "\n";
      return 2;
    case CommandLine::Action::kRun:
      break;
  }
  const ExporterConfig& config = command_line.config;
  SetUpLogging(config.log_level, config.log_format);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  spdlog::info("converge-exporter {} starting: {}", kVersion, DescribeConfig());

  absl::StatusOr<std::unique_ptr<Source>> source = MakeSource(config);
  if (!source.ok()) {
    spdlog::error("cannot start source {}: {}", config.source,
                  source.status().ToString());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Sink>> sink = MakeSink(config);
  if (!sink.ok()) {
    spdlog::error("cannot start sink {}: {}", config.sink,
                  sink.status().ToString());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
      config.pipeline, std::move(*source), std::move(*sink));
  if (!pipeline.ok()) {
    spdlog::error("invalid pipeline options: {}", pipeline.status().ToString());
    return 2;
  }

  // The listener only reads snapshots, so it starts before the run and
  // stops after it.
  const ExporterInfo info{kVersion,
                          config.source,
                          config.sink,
                          config.pipeline.shards,
                          config.pipeline.fetchers,
                          config.pipeline.engine.threshold};
  Pipeline* const running = pipeline->get();
  std::unique_ptr<HttpServer> server;
  if (!config.listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpServer>> started = HttpServer::Start(
        config.listen, [running] { return running->Snapshot(); }, info);
    if (!started.ok()) {
      spdlog::error("cannot start the listener: {}",
                    started.status().ToString());
      return 1;
    }
    server = std::move(*started);
  }

  absl::StatusOr<PipelineSummary> summary;
  {
    SignalWatcher watcher(running);
    summary = running->Run();
  }
  if (server != nullptr) server->Stop();
  curl_global_cleanup();
  if (!summary.ok()) {
    spdlog::error("run failed: {}", summary.status().ToString());
    return 1;
  }

  if (!config.final_metrics_file.empty()) {
    std::ofstream out(config.final_metrics_file);
    out << RenderMetrics(running->Snapshot(), info);
    if (!out) {
      spdlog::error("cannot write --final-metrics-file={}",
                    config.final_metrics_file);
    }
  }
  spdlog::info("converge-exporter stopped after {}",
               absl::FormatDuration(summary->wall_time));
  std::cerr << summary->ToLine() << std::endl;
  return 0;
}

}  // namespace
}  // namespace converge

int main(int argc, char** argv) { return converge::Main(argc, argv); }
