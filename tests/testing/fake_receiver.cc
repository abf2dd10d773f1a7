#include "tests/testing/fake_receiver.h"

#include <snappy.h>

#include <chrono>
#include <stdexcept>
#include <utility>

#include <httplib.h>

#include "remote.pb.h"

namespace converge::harness {
namespace {

void Decode(ReceivedRequest* request) {
  std::string raw;
  if (!snappy::Uncompress(request->body.data(), request->body.size(), &raw)) {
    return;
  }
  prompb::WriteRequest write;
  if (!write.ParseFromString(raw)) return;
  for (const prompb::TimeSeries& series : write.timeseries()) {
    std::map<std::string, std::string> labels;
    for (const prompb::Label& label : series.labels()) {
      labels[label.name()] = label.value();
    }
    for (const prompb::Sample& sample : series.samples()) {
      request->samples.push_back(
          ReceivedSample{labels, sample.timestamp(), sample.value()});
    }
  }
  request->decoded = true;
}

}  // namespace

FakeReceiver::FakeReceiver() : handler_([](const ReceivedRequest&) {
  return ReceiverReply{};
}) {
  Listen();
}

FakeReceiver::~FakeReceiver() {
  Release();
  Stop();
}

void FakeReceiver::Listen() {
  server_ = std::make_unique<httplib::Server>();
  server_->set_keep_alive_max_count(100);
  server_->Post("/api/v1/write", [this](const httplib::Request& http_request,
                                        httplib::Response& response) {
    ReceivedRequest request{http_request.path,
                            {http_request.headers.begin(),
                             http_request.headers.end()},
                            http_request.body,
                            http_request.remote_port};
    Decode(&request);

    std::unique_lock<std::mutex> lock(mutex_);
    const ReceiverReply reply = handler_(request);
    requests_.push_back(request);
    released_.wait_for(lock, std::chrono::seconds(30), [this] { return !hold_; });
    if (reply.status >= 200 && reply.status < 300) {
      accepted_.insert(accepted_.end(), request.samples.begin(),
                       request.samples.end());
    }
    lock.unlock();

    response.status = reply.status;
    if (!reply.retry_after.empty()) {
      response.set_header("Retry-After", reply.retry_after);
    }
    if (!reply.body.empty()) response.set_content(reply.body, "text/plain");
  });

  if (port_ == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else if (!server_->bind_to_port("127.0.0.1", port_)) {
    throw std::runtime_error("fake receiver: cannot bind its port again");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only ends a server that is already running.
  while (!server_->is_running()) std::this_thread::yield();
}

void FakeReceiver::Stop() {
  if (server_ == nullptr) return;
  server_->stop();
  thread_.join();
  server_.reset();
}

void FakeReceiver::Start() {
  if (server_ != nullptr) return;
  Listen();
}

std::string FakeReceiver::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/write";
}

void FakeReceiver::Reply(int status, std::string body,
                         std::string retry_after) {
  ReceiverReply reply{status, std::move(body), std::move(retry_after)};
  SetHandler([reply](const ReceivedRequest&) { return reply; });
}

void FakeReceiver::SetHandler(Handler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  handler_ = std::move(handler);
}

void FakeReceiver::HoldReplies() {
  std::lock_guard<std::mutex> lock(mutex_);
  hold_ = true;
}

void FakeReceiver::Release() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    hold_ = false;
  }
  released_.notify_all();
}

std::vector<ReceivedRequest> FakeReceiver::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::vector<ReceivedSample> FakeReceiver::accepted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return accepted_;
}

}  // namespace converge::harness
