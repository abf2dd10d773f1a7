// The file sink: one JSON object per sample and line, to a path or stdout.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "converge/sinks.h"

namespace converge {
namespace {

constexpr std::string_view kStdoutPath = "-";

// Appends `text` as a JSON string. Quote, backslash and the control
// characters U+0000..U+001F are escaped, the last as \u00XX. Every other byte
// is copied unchanged, so UTF-8 stays UTF-8 (and invalid UTF-8 in a label
// stays invalid).
void AppendJsonString(std::string_view text, std::string* out) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  out->push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (byte < 0x20) {
      out->append("\\u00");
      out->push_back(kHexDigits[byte >> 4]);
      out->push_back(kHexDigits[byte & 0xf]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// A full disk or quota can clear once space is freed, and EAGAIN clears once
// a non-blocking reader drains the pipe, so the caller retries those. Other
// errors (EIO, EPIPE, EFBIG, ...) do not go away by waiting.
absl::StatusCode WriteErrorCode(int error) {
  switch (error) {
    case ENOSPC:
    case EDQUOT:
    case EAGAIN:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kFailedPrecondition;
  }
}

class FileSink final : public Sink {
 public:
  explicit FileSink(const FileSinkOptions& options)
      : path_(options.path), to_stdout_(options.path == kStdoutPath) {}

  ~FileSink() override {
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
  }

  std::string_view name() const override { return "file"; }

  absl::Status Open() override;
  absl::Status Push(std::span<const Sample> batch) override;
  absl::Status Close() override;

 private:
  // Path as shown in messages.
  std::string DisplayPath() const {
    return to_stdout_ ? std::string("standard output")
                      : absl::StrCat("\"", path_, "\"");
  }

  // Writes all of `bytes`, retrying short writes and EINTR.
  // Returns the errno of the first failed write, or 0.
  int WriteAll(std::string_view bytes);

  // Constant after construction.
  const std::string path_;
  const bool to_stdout_;

  int fd_ = -1;
  bool owns_fd_ = false;     // false for standard output, which is not closed
  bool can_rewind_ = false;  // a regular file this sink created, see Push()
  uint64_t committed_bytes_ = 0;  // bytes of fully written batches
  std::string buffer_;            // the batch being written, reused
};

absl::Status FileSink::Open() {
  if (to_stdout_) {
    fd_ = STDOUT_FILENO;
    spdlog::info("file sink: writing JSON lines to standard output");
    return absl::OkStatus();
  }

  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int error = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        "failed to open output file ", DisplayPath(), " for writing: ",
        ErrnoText(error),
        "; check that its directory exists and is writable, or pass - to "
        "write to standard output"));
  }
  owns_fd_ = true;

  // Only a regular file can be cut back after a failed write. A pipe or a
  // device (e.g. /dev/stdout) cannot.
  struct stat info {};
  can_rewind_ = ::fstat(fd_, &info) == 0 && S_ISREG(info.st_mode);
  spdlog::info("file sink: writing JSON lines to {}", DisplayPath());
  return absl::OkStatus();
}

absl::Status FileSink::Push(std::span<const Sample> batch) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("file sink for ", DisplayPath(),
                     " received a batch before Open() or after Close()"));
  }

  // Encode the whole batch first so that it reaches the file in one write.
  buffer_.clear();
  for (const Sample& sample : batch) AppendJsonLine(sample, &buffer_);
  if (buffer_.empty()) return absl::OkStatus();

  const int error = WriteAll(buffer_);
  if (error == 0) {
    committed_bytes_ += buffer_.size();
    return absl::OkStatus();
  }

  // Cut a half-written batch off again, so that a retry of the same batch
  // does not leave a broken line in the file.
  // NOTE: standard output and other non-regular files cannot be cut back and
  // may keep a partial line after a failed write.
  if (can_rewind_) {
    if (::ftruncate(fd_, static_cast<off_t>(committed_bytes_)) != 0 ||
        ::lseek(fd_, static_cast<off_t>(committed_bytes_), SEEK_SET) < 0) {
      can_rewind_ = false;
    }
  }
  return absl::Status(
      WriteErrorCode(error),
      absl::StrCat("failed to write ", batch.size(), " samples (",
                   buffer_.size(), " bytes) to ", DisplayPath(), ": ",
                   ErrnoText(error)));
}

int FileSink::WriteAll(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd_, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    // write() of a non-empty buffer returns 0 only on a broken device.
    if (written == 0) return EIO;
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return 0;
}

absl::Status FileSink::Close() {
  // Every batch was written to the kernel before Push() returned, so only
  // closing is left. Close() does not fsync.
  const int fd = fd_;
  fd_ = -1;
  if (!owns_fd_ || fd < 0) return absl::OkStatus();
  owns_fd_ = false;

  if (::close(fd) != 0) {
    const int error = errno;
    return absl::DataLossError(absl::StrCat(
        "failed to close output file ", DisplayPath(), ": ", ErrnoText(error),
        "; the last batches may not have reached the disk"));
  }
  return absl::OkStatus();
}

}  // namespace

void AppendJsonLine(const Sample& sample, std::string* out) {
  out->append("{\"name\":");
  AppendJsonString(sample.series.name(), out);

  // SeriesKey::labels() is already sorted by name in byte order.
  out->append(",\"labels\":{");
  bool first = true;
  for (const auto& [label_name, label_value] : sample.series.labels()) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(label_name, out);
    out->push_back(':');
    AppendJsonString(label_value, out);
  }

  absl::StrAppend(out, "},\"value\":", sample.value,
                  ",\"timestamp_ms\":", sample.timestamp_ms, "}\n");
}

std::unique_ptr<Sink> MakeFileSink(const FileSinkOptions& options) {
  return std::make_unique<FileSink>(options);
}

}  // namespace converge
