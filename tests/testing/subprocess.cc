#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/absl_compat.h"

extern char** environ;

namespace converge::harness {
namespace {

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

bool IsExecutableFile(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

// This process's environment with `overrides` replacing or adding variables.
std::vector<std::string> MergeEnvironment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::string_view name = text.substr(0, text.find('='));
    const bool overridden =
        std::any_of(overrides.begin(), overrides.end(),
                    [name](const auto& pair) { return pair.first == name; });
    if (!overridden) result.emplace_back(text);
  }
  for (const auto& [name, value] : overrides) {
    result.push_back(absl::StrCat(name, "=", value));
  }
  return result;
}

std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Opens `path` for the child's output. Returns -1 for an empty path, which
// means the child inherits the stream.
absl::StatusOr<int> OpenOutput(const std::string& path) {
  if (path.empty()) return -1;
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        "failed to open \"", path, "\" for a child's output: ",
        ErrnoText(error)));
  }
  return fd;
}

// Runs in the forked child, so it uses only async-signal-safe calls, because
// another thread of the parent may have held a malloc lock at fork().
[[noreturn]] void ExecChild(const char* path, char* const* argv,
                            char* const* envp, pid_t parent, int stdout_fd,
                            int stderr_fd, int error_fd) {
  // Die with the thread that started us. The check catches a parent that
  // exited before prctl() took effect.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);

  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  if (stdout_fd >= 0) ::dup2(stdout_fd, STDOUT_FILENO);
  if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);

  // Unblock all signals and restore SIGPIPE, which the test process may have
  // changed and the program would otherwise inherit.
  sigset_t empty;
  ::sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  ::signal(SIGPIPE, SIG_DFL);

  ::execve(path, argv, envp);

  // Report the failure through the close-on-exec pipe.
  const int error = errno;
  [[maybe_unused]] ssize_t ignored = ::write(error_fd, &error, sizeof(error));
  ::_exit(127);
}

}  // namespace

absl::StatusOr<std::string> FindExecutable(std::string_view name) {
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    if (IsExecutableFile(path)) return path;
    return absl::NotFoundError(
        absl::StrCat("executable \"", ToAbsl(name), "\" not found"));
  }

  const char* path_variable = std::getenv("PATH");
  std::vector<std::string> directories = absl::StrSplit(
      path_variable != nullptr ? path_variable : "", ':', absl::SkipEmpty());
  directories.push_back("/usr/bin");
  for (const std::string& directory : directories) {
    std::string candidate = absl::StrCat(directory, "/", ToAbsl(name));
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("executable \"", ToAbsl(name),
                                          "\" not found on PATH or in /usr/bin"));
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exited with code ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    const int signal = WTERMSIG(wait_status);
    return absl::StrCat("killed by signal ", signal, " (", ::strsignal(signal),
                        ")");
  }
  return absl::StrCat("stopped with wait status ", wait_status);
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const SubprocessOptions& options) {
  if (options.argv.empty()) {
    return absl::InvalidArgumentError("cannot start a process: empty argv");
  }
  absl::StatusOr<std::string> path = FindExecutable(options.argv[0]);
  if (!path.ok()) return path.status();
  const std::string name(path->substr(path->rfind('/') + 1));

  // Build every array before fork(): the child may not allocate.
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = MergeEnvironment(options.env);
  const std::vector<char*> argv = NullTerminated(argv_strings);
  const std::vector<char*> envp = NullTerminated(env_strings);

  // Open the output files and the pipe that reports a failed execve().
  absl::StatusOr<int> stdout_fd = OpenOutput(options.stdout_path);
  if (!stdout_fd.ok()) return stdout_fd.status();
  absl::StatusOr<int> stderr_fd = OpenOutput(options.stderr_path);
  if (!stderr_fd.ok()) {
    if (*stdout_fd >= 0) ::close(*stdout_fd);
    return stderr_fd.status();
  }
  const auto close_outputs = [&] {
    if (*stdout_fd >= 0) ::close(*stdout_fd);
    if (*stderr_fd >= 0) ::close(*stderr_fd);
  };
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    close_outputs();
    return absl::UnavailableError(
        absl::StrCat("failed to start ", name, ": pipe2: ", ErrnoText(error)));
  }

  // Fork and execute.
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ExecChild(path->c_str(), argv.data(), envp.data(), parent, *stdout_fd,
              *stderr_fd, error_pipe[1]);
  }
  const int fork_error = errno;
  close_outputs();
  ::close(error_pipe[1]);
  if (pid < 0) {
    ::close(error_pipe[0]);
    return absl::UnavailableError(
        absl::StrCat("failed to start ", name, ": fork: ",
                     ErrnoText(fork_error)));
  }

  // The pipe closes without data when execve() succeeds.
  int exec_error = 0;
  ssize_t read_bytes;
  do {
    read_bytes = ::read(error_pipe[0], &exec_error, sizeof(exec_error));
  } while (read_bytes < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (read_bytes == sizeof(exec_error)) {
    int ignored_status;
    ::waitpid(pid, &ignored_status, 0);
    return absl::FailedPreconditionError(absl::StrCat(
        "failed to execute ", *path, ": ", ErrnoText(exec_error)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, name));
}

Subprocess::~Subprocess() {
  if (!wait_status_.has_value()) Kill();
}

absl::Status Subprocess::Signal(int signal) {
  if (wait_status_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot signal ", name_, " (pid ", pid_,
                     "): it already ", DescribeWaitStatus(*wait_status_)));
  }
  if (::kill(pid_, signal) != 0) {
    const int error = errno;
    return absl::InternalError(absl::StrCat("failed to send signal ", signal,
                                            " to ", name_, " (pid ", pid_,
                                            "): ", ErrnoText(error)));
  }
  return absl::OkStatus();
}

std::optional<int> Subprocess::Poll() {
  if (wait_status_.has_value()) return wait_status_;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) wait_status_ = status;
  return wait_status_;
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  // Poll with a growing pause, because a blocking waitpid() cannot time out.
  // The children here exit within milliseconds to seconds.
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (true) {
    if (std::optional<int> status = Poll(); status.has_value()) return *status;
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    absl::SleepFor(std::min(pause, deadline - now));
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(name_, " (pid ", pid_, ") still running after ",
                   absl::FormatDuration(timeout)));
}

int Subprocess::Kill() {
  if (wait_status_.has_value()) return *wait_status_;
  ::kill(pid_, SIGKILL);

  // SIGKILL cannot be caught or blocked, so this wait ends.
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
  return status;
}

}  // namespace converge::harness
