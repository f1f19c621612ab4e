#include "coordinator/service/http_endpoint.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "coordinator/service/auth.h"

namespace gb::coord {

namespace {

constexpr size_t kMaxRequestBytes = 16 << 10;
constexpr int kRequestTimeoutMs = 5000;

bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string reply(int code, const char* reason, const std::string& content_type, const std::string& body,
                  bool head, const std::string& extra_headers = "") {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += extra_headers;
  r += "Connection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(const std::string& listen,
                                                          std::map<std::string, HttpPage> pages) {
  Result<ListenAddress> address = parse_listen_address(listen);
  if (!address.ok()) return Error{"--metrics-listen: " + address.message()};
  if (address->is_unix()) return Error{"--metrics-listen " + listen + ": expected HOST:PORT (Prometheus scrapes TCP)"};

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(address->port);
  const int gai = ::getaddrinfo(address->host.empty() ? nullptr : address->host.c_str(), port_text.c_str(), &hints,
                                &found);
  if (gai != 0) return Error{"--metrics-listen " + listen + ": " + gai_strerror(gai)};

  std::unique_ptr<HttpEndpoint> ep(new HttpEndpoint());
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    ep->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    ep->listen_fd_ = fd;
    break;
  }
  ::freeaddrinfo(found);
  if (ep->listen_fd_ < 0) return Error{"--metrics-listen " + listen + ": cannot listen: " + last_error};
  if (::pipe2(ep->wake_fd_, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  ep->pages_ = std::move(pages);
  ep->address_ = address->display(ep->port_);
  ep->thread_ = std::thread([p = ep.get()] { p->serve(); });
  return ep;
}

HttpEndpoint::~HttpEndpoint() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_fd_) {
    if (fd >= 0) ::close(fd);
  }
}

void HttpEndpoint::stop() {
  if (stopped_.exchange(true)) return;
  if (wake_fd_[1] >= 0) {
    const char c = 'x';
    (void)!::write(wake_fd_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
}

void HttpEndpoint::serve() {
  while (!stopped_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    const int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    answer(fd);
    ::close(fd);
  }
}

void HttpEndpoint::answer(int fd) {
  const timeval tv{kRequestTimeoutMs / 1000, (kRequestTimeoutMs % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  // The request line and headers, up to the blank line.
  std::string request;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.find("\n\n") == std::string::npos) {
    if (request.size() > kMaxRequestBytes || std::chrono::steady_clock::now() > deadline) {
      send_all(fd, reply(431, "Request Header Fields Too Large", "text/plain", "request too large or too slow\n",
                         false));
      return;
    }
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed or timed out before a whole request
    request.append(buf, static_cast<size_t>(n));
  }
  const std::string line = request.substr(0, request.find_first_of("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    send_all(fd, reply(400, "Bad Request", "text/plain", "expected 'METHOD PATH HTTP/1.x'\n", false));
    return;
  }
  const std::string method = line.substr(0, sp1);
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    send_all(fd, reply(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n"));
    return;
  }
  auto page = pages_.find(path);
  if (page == pages_.end()) {
    std::string known;
    for (const auto& [p, _] : pages_) known += (known.empty() ? "" : ", ") + p;
    send_all(fd, reply(404, "Not Found", "text/plain", "no page " + path + " (pages: " + known + ")\n", head));
    return;
  }
  send_all(fd, reply(200, "OK", page->second.content_type, page->second.body(), head));
}

}  // namespace gb::coord
