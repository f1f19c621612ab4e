// A small HTTP/1.x server for a few fixed GET pages: how the coordinator serves
// /metrics to Prometheus (Debian 12 packages no Prometheus C++ client). One thread
// answers one connection at a time: a request line and headers (at most 16 KiB,
// read within 5 s), one reply, then the connection is closed. GET and HEAD only;
// an unknown path is 404, another method 405. Not a general web server: no
// keep-alive, no request bodies, no TLS, no authentication.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace gb::coord {

struct HttpPage {
  std::string content_type;           // e.g. "text/plain; version=0.0.4; charset=utf-8"
  std::function<std::string()> body;  // called for every request of the page
};

class HttpEndpoint {
 public:
  // Binds `listen` (HOST:PORT or [IPV6]:PORT; port 0 picks a free one) and starts
  // answering. Errors: an invalid address, a unix socket, a port that cannot be bound.
  static Result<std::unique_ptr<HttpEndpoint>> start(const std::string& listen,
                                                     std::map<std::string, HttpPage> pages);
  ~HttpEndpoint();  // stop()
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // "HOST:PORT" with the port bound.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // Stops accepting and joins the thread (a request in progress finishes). Idempotent.
  void stop();

 private:
  HttpEndpoint() = default;
  void serve();
  void answer(int fd);

  std::map<std::string, HttpPage> pages_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};  // a pipe: stop() writes, the thread's poll wakes
  std::string address_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace gb::coord
