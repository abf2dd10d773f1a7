#include "tests/testing/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace converge::harness {
namespace {

absl::Status SocketError(const char* call) {
  const int error = errno;
  return absl::UnavailableError(absl::StrCat(
      "failed to pick a free port on 127.0.0.1: ", call, ": ",
      std::error_code(error, std::generic_category()).message()));
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError("socket");

  // Port 0 lets the kernel choose a port that is free right now.
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address),
             sizeof(address)) != 0) {
    absl::Status status = SocketError("bind");
    ::close(fd);
    return status;
  }

  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    absl::Status status = SocketError("getsockname");
    ::close(fd);
    return status;
  }
  ::close(fd);
  return static_cast<int>(ntohs(address.sin_port));
}

}  // namespace converge::harness
