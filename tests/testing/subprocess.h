// Child processes for tests that drive real programs (VictoriaMetrics, the
// exporter binary): start one with arguments and environment, capture its
// output to files, send it signals, wait for it with a timeout, and kill it
// when the handle is destroyed.
//
// Thread safety: a Subprocess is used by one thread at a time.

#ifndef CONVERGE_TESTS_TESTING_SUBPROCESS_H_
#define CONVERGE_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace converge::harness {

struct SubprocessOptions {
  // argv[0] is a path, or a name looked up with FindExecutable().
  std::vector<std::string> argv;
  // Variables set in the child on top of this process's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Files that receive the child's output, created or truncated. Empty
  // inherits this process's stream. Standard input is always /dev/null.
  std::string stdout_path;
  std::string stderr_path;
};

// Returns the path of the executable `name`: `name` itself if it contains a
// '/', else the first match on PATH, else /usr/bin/<name>.
// Returns kNotFound if none of those is an executable file.
absl::StatusOr<std::string> FindExecutable(std::string_view name);

// Describes a waitpid() status, e.g. "exited with code 1" or "killed by
// signal 9 (Killed)".
std::string DescribeWaitStatus(int wait_status);

// A running child process, owned by this object.
//
// The destructor kills the child with SIGKILL and reaps it if it is still
// running. The child also receives SIGKILL if the thread that started it
// exits first (Linux PR_SET_PDEATHSIG), so a crashed test leaves no orphans.
// Start children from a thread that outlives them.
class Subprocess {
 public:
  // Forks and executes `options.argv`.
  // Returns kInvalidArgument for an empty argv, kNotFound for a missing
  // executable, and an error naming the program when an output file cannot be
  // opened or execve() fails.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const SubprocessOptions& options);

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // The executable's file name, for messages.
  const std::string& name() const { return name_; }

  // Sends `signal` to the child.
  // Returns kFailedPrecondition if the child was already reaped.
  absl::Status Signal(int signal);

  // Reaps the child if it has exited, without blocking.
  // Returns its waitpid() status, or nullopt while it is running.
  std::optional<int> Poll();

  // Waits up to `timeout` for the child to exit.
  // Returns its waitpid() status, or kDeadlineExceeded if it is still running.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Sends SIGKILL (which also ends a stopped child) and reaps the child.
  // Returns its waitpid() status.
  int Kill();

 private:
  Subprocess(pid_t pid, std::string name)
      : pid_(pid), name_(std::move(name)) {}

  const pid_t pid_;
  const std::string name_;
  std::optional<int> wait_status_;  // set once the child is reaped
};

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_SUBPROCESS_H_
