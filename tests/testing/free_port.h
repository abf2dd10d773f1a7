// Free TCP ports on the loopback interface, for servers that tests start.

#ifndef CONVERGE_TESTS_TESTING_FREE_PORT_H_
#define CONVERGE_TESTS_TESTING_FREE_PORT_H_

#include "absl/status/statusor.h"

namespace converge::harness {

// Returns a TCP port that was free on 127.0.0.1 when this call bound it and
// let it go again. Another process can take the port before the caller binds
// it, so a caller that can should retry with a new port on "address in use".
absl::StatusOr<int> PickFreePort();

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_FREE_PORT_H_
