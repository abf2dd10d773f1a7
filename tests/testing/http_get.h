// A minimal HTTP GET for tests that query servers on 127.0.0.1.

#ifndef CONVERGE_TESTS_TESTING_HTTP_GET_H_
#define CONVERGE_TESTS_TESTING_HTTP_GET_H_

#include <string>

namespace converge::harness {

struct HttpResult {
  long status = 0;  // 0 when the request failed
  std::string body;
};

// GETs http://127.0.0.1:<port><path> with a 10 s timeout.
// REQUIRES: curl_global_init() was called.
HttpResult HttpGet(int port, const std::string& path);

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_HTTP_GET_H_
