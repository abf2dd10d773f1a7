// A Prometheus remote write receiver on 127.0.0.1 for tests: records every
// request, decodes the samples it carries, and replies with a status that a
// test can fix or compute per request (503 for a while, 429 with Retry-After,
// 400 for a batch containing a bad sample, a reply held past the client's
// timeout, ...). It can also be stopped and started again on the same port
// to play a receiver that refuses connections for a while.
//
// Thread safety: every method may be called from any thread; the server's
// handler runs on httplib's threads.

#ifndef CONVERGE_TESTS_TESTING_FAKE_RECEIVER_H_
#define CONVERGE_TESTS_TESTING_FAKE_RECEIVER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace converge::harness {

// One sample as the receiver decoded it.
struct ReceivedSample {
  std::map<std::string, std::string> labels;  // `__name__` included
  int64_t timestamp_ms = 0;
  double value = 0;
};

struct ReceivedRequest {
  std::string path;
  std::multimap<std::string, std::string> headers;
  std::string body;  // as sent: snappy-compressed protobuf
  int remote_port = 0;
  bool decoded = false;  // body was valid snappy + WriteRequest
  std::vector<ReceivedSample> samples;
};

struct ReceiverReply {
  int status = 204;
  std::string body;
  std::string retry_after;  // empty: no Retry-After header
};

class FakeReceiver {
 public:
  // Decides the reply to one request. Called with the request decoded.
  using Handler = std::function<ReceiverReply(const ReceivedRequest&)>;

  // Starts listening on a free port of 127.0.0.1.
  FakeReceiver();
  ~FakeReceiver();

  FakeReceiver(const FakeReceiver&) = delete;
  FakeReceiver& operator=(const FakeReceiver&) = delete;

  std::string url() const;  // http://127.0.0.1:<port>/api/v1/write
  int port() const { return port_; }

  // Replies with `reply` to every request from now on.
  void Reply(int status, std::string body = "", std::string retry_after = "");
  // Computes each reply with `handler` from now on.
  void SetHandler(Handler handler);

  // Makes the handler wait until Release() (at most 30 s) before replying.
  void HoldReplies();
  void Release();

  // Stops listening, so connections are refused, and starts again on the
  // same port.
  void Stop();
  void Start();

  std::vector<ReceivedRequest> requests() const;

  // Samples of every request answered with a 2xx, in arrival order.
  std::vector<ReceivedSample> accepted() const;

 private:
  void Listen();

  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable released_;
  Handler handler_;  // guarded by mutex_
  bool hold_ = false;
  std::vector<ReceivedRequest> requests_;
  std::vector<ReceivedSample> accepted_;
};

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_FAKE_RECEIVER_H_
