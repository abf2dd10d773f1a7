// fake-cloudflare: the fake Cloudflare API as a program, for demos of
// converge-exporter --source=cloudflare without a Cloudflare account.
//
//   fake-cloudflare --port=8787 --zones=12 --free-every=6 --token=demo
//
// serves the GraphQL endpoint at http://127.0.0.1:8787/client/v4/graphql
// and the zones API at http://127.0.0.1:8787/client/v4 until SIGINT or
// SIGTERM. It listens on 127.0.0.1 only.

#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/fake_cloudflare/fake_cloudflare.h"

ABSL_FLAG(int, port, 8787,
          "Port on 127.0.0.1 to listen on; 0 picks a free one.");
ABSL_FLAG(int, zones, 5, "Number of zones (zone-0.example, ...).");
ABSL_FLAG(int, free_every, 0,
          "Put every n-th zone on the Free plan; 0 puts none there.");
ABSL_FLAG(int64_t, seed, 1, "Seed of the zone IDs and the values.");
ABSL_FLAG(std::string, token, "",
          "API token to accept; empty accepts any request.");
ABSL_FLAG(std::string, clock, "wall",
          "wall: the fake's time runs with the wall clock from --start; "
          "follow: it follows the latest time range asked for (for an "
          "exporter started with --cf-clock-start).");
ABSL_FLAG(std::string, start, "",
          "Start of the fake's time (RFC 3339); empty means the current "
          "minute.");
ABSL_FLAG(double, speed, 1.0,
          "With --clock=wall: how much faster than the "
          "wall clock the fake's time runs.");

int main(int argc, char** argv) {
  using converge::fake_cloudflare::ClockMode;
  using converge::fake_cloudflare::FakeCloudflare;
  using converge::fake_cloudflare::FakeOptions;

  absl::SetProgramUsageMessage(
      "Serves a fake Cloudflare GraphQL Analytics and zones API on 127.0.0.1.");
  absl::ParseCommandLine(argc, argv);

  // Signals are handled by sigwait below, so block them before any thread
  // starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  FakeOptions options;
  options.zones = converge::fake_cloudflare::MakeZones(
      absl::GetFlag(FLAGS_zones), absl::GetFlag(FLAGS_free_every),
      static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));
  options.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  options.token = absl::GetFlag(FLAGS_token);
  options.speed = absl::GetFlag(FLAGS_speed);
  const std::string clock = absl::GetFlag(FLAGS_clock);
  if (clock != "wall" && clock != "follow") {
    std::cerr << "fake-cloudflare: invalid --clock=" << clock
              << ": must be wall or follow\n";
    return 2;
  }
  options.clock =
      clock == "wall" ? ClockMode::kWall : ClockMode::kFollowRequests;
  const std::string start = absl::GetFlag(FLAGS_start);
  if (start.empty()) {
    const absl::Time now = absl::Now();
    options.start = absl::UnixEpoch() +
                    absl::Floor(now - absl::UnixEpoch(), absl::Minutes(1));
  } else {
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, start, &options.start, &error)) {
      std::cerr << "fake-cloudflare: invalid --start=" << start << ": " << error
                << "; expected e.g. 2026-06-01T00:00:00Z\n";
      return 2;
    }
  }

  auto fake = FakeCloudflare::Start(options, absl::GetFlag(FLAGS_port));
  if (!fake.ok()) {
    std::cerr << "fake-cloudflare: " << fake.status().message() << "\n";
    return 1;
  }
  std::cout << "fake-cloudflare: GraphQL " << (*fake)->graphql_url()
            << "\nfake-cloudflare: REST    " << (*fake)->rest_url()
            << "\nfake-cloudflare: clock " << clock << " from "
            << absl::FormatTime(absl::RFC3339_sec, options.start,
                                absl::UTCTimeZone())
            << "\n";
  for (const auto& zone : options.zones) {
    std::cout << "fake-cloudflare: zone " << zone.id << " " << zone.name << " ("
              << zone.plan << ")\n";
  }
  std::cout.flush();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cout << "fake-cloudflare: stopping; served "
            << (*fake)->graphql_requests() << " GraphQL queries\n";
  (*fake)->Stop();
  return 0;
}
