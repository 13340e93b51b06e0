#include "transport/http_server.hpp"

#include <Poco/Net/HTTPResponse.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "common/thread_pool.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "transport/connection.hpp"
#include "transport/http_wire.hpp"

namespace mcphost::transport {

namespace {

constexpr std::uint64_t kListenTag = 0;
constexpr std::uint64_t kWakeTag = 1;

}  // namespace

// ------------------------------------------------------------------------------------ reactor

class HttpServer::Reactor {
 public:
  Reactor(HttpServer& owner, HttpServerOptions options, HttpHandler handler)
      : owner_(owner),
        options_(std::move(options)),
        handler_(std::move(handler)),
        pool_(options_.workerThreads, options_.maxQueuedRequests),
        controlPool_(options_.controlThreads, options_.maxQueuedRequests) {}

  ~Reactor() {
    for (auto& [id, c] : connections_) ::close(c->fd);
    pool_.stop();
    controlPool_.stop();
    if (listenFd_ >= 0) ::close(listenFd_);
    if (wakeFd_ >= 0) ::close(wakeFd_);
    if (epollFd_ >= 0) ::close(epollFd_);
  }

  Expected<std::uint16_t, std::string> bind();
  void run();
  void stop() {
    running_ = false;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakeFd_, &one, sizeof one);
  }
  void wake(const std::shared_ptr<Connection>& c) {
    {
      std::lock_guard lock(dirtyMutex_);
      dirty_.push_back(c);
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakeFd_, &one, sizeof one);
  }

 private:
  void acceptAll();
  void flushWoken();  // answers queued by workers
  void onConnectionEvent(const std::shared_ptr<Connection>& c, std::uint32_t events, std::uint32_t readMask);
  void onReadable(const std::shared_ptr<Connection>& c);
  void parse(const std::shared_ptr<Connection>& c);
  void dispatch(const std::shared_ptr<Connection>& c, std::string body);
  void flush(const std::shared_ptr<Connection>& c);
  void fail(const std::shared_ptr<Connection>& c, int status, std::string_view message);
  void close(const std::shared_ptr<Connection>& c);
  void armWrite(Connection& c, bool on);
  void sweep();
  void pauseAccepting();
  void watchListener(bool on);
  [[nodiscard]] bool busyRequests() const;

  HttpServer& owner_;
  HttpServerOptions options_;
  HttpHandler handler_;
  ThreadPool pool_;
  ThreadPool controlPool_;
  int epollFd_ = -1;
  int listenFd_ = -1;
  int wakeFd_ = -1;
  std::atomic<bool> running_{true};

 public:
  std::function<void()> drainHook_;
  std::chrono::milliseconds drainTimeout_{10000};

 private:
  std::uint64_t nextId_ = 2;
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections_;
  std::optional<Clock::time_point> acceptPausedUntil_;
  std::mutex dirtyMutex_;
  std::vector<std::weak_ptr<Connection>> dirty_;
};

Expected<std::uint16_t, std::string> HttpServer::Reactor::bind() {
  in_addr address{};
  if (::inet_pton(AF_INET, options_.host.c_str(), &address) != 1) {
    return unexpected("listen address '" + options_.host + "' is not an IPv4 address (e.g. 127.0.0.1)");
  }
  listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listenFd_ < 0) return unexpected(std::string("socket: ") + std::strerror(errno));
  int yes = 1;
  ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(options_.port);
  sa.sin_addr = address;
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return unexpected("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                      std::strerror(errno) + " (is another process using the port?)");
  }
  if (::listen(listenFd_, 4096) != 0) return unexpected(std::string("listen: ") + std::strerror(errno));
  socklen_t len = sizeof sa;
  ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&sa), &len);
  epollFd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epollFd_ < 0 || wakeFd_ < 0) return unexpected(std::string("epoll/eventfd: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epollFd_, EPOLL_CTL_ADD, listenFd_, &ev);
  ev.data.u64 = kWakeTag;
  ::epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &ev);
  return ntohs(sa.sin_port);
}

void HttpServer::Reactor::run() {
  std::vector<epoll_event> events(512);
  auto lastSweep = Clock::now();
  while (running_) {
    const int n = ::epoll_wait(epollFd_, events.data(), static_cast<int>(events.size()), 500);
    if (n < 0 && errno != EINTR) {
      log::error("http", "epoll_wait failed", {{"error", std::strerror(errno)}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      const auto tag = events[i].data.u64;
      if (tag == kListenTag) {
        acceptAll();
        continue;
      }
      if (tag == kWakeTag) {
        flushWoken();
      } else if (auto it = connections_.find(tag); it != connections_.end()) {
        // A copy, not it->second: handling the event may erase the map entry (close).
        const std::shared_ptr<Connection> c = it->second;
        onConnectionEvent(c, events[i].events, EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP);
      }
    }
    if (Clock::now() - lastSweep > std::chrono::milliseconds(500)) {
      sweep();
      lastSweep = Clock::now();
    }
  }
  // Shutdown: stop accepting, let the owner end sessions and streams, give in-flight requests
  // time to answer, then drop every connection.
  watchListener(false);
  if (drainHook_) drainHook_();
  const auto drainUntil = Clock::now() + drainTimeout_;
  while (busyRequests() && Clock::now() < drainUntil) {
    const int n = ::epoll_wait(epollFd_, events.data(), static_cast<int>(events.size()), 50);
    for (int i = 0; i < n; ++i) {
      const auto tag = events[i].data.u64;
      if (tag == kWakeTag) {
        flushWoken();
      } else if (auto it = connections_.find(tag); it != connections_.end()) {
        // While draining, new request bytes are not read; only hang-ups and writes matter.
        const std::shared_ptr<Connection> c = it->second;
        onConnectionEvent(c, events[i].events, EPOLLHUP | EPOLLERR | EPOLLRDHUP);
      }
    }
  }
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [id, c] : connections_) all.push_back(c);
  for (auto& c : all) close(c);
}

void HttpServer::Reactor::flushWoken() {
  std::uint64_t value = 0;
  [[maybe_unused]] auto r = ::read(wakeFd_, &value, sizeof value);
  std::vector<std::weak_ptr<Connection>> dirty;
  {
    std::lock_guard lock(dirtyMutex_);
    dirty.swap(dirty_);
  }
  for (auto& weak : dirty) {
    if (auto c = weak.lock(); c && connections_.count(c->id) != 0) onConnectionEvent(c, EPOLLOUT, 0);
  }
}

void HttpServer::Reactor::onConnectionEvent(const std::shared_ptr<Connection>& c, std::uint32_t events,
                                            std::uint32_t readMask) {
  // One connection's bad input must never take the reactor (and every other client) down.
  try {
    if ((events & readMask) != 0) onReadable(c);
    if ((events & EPOLLOUT) != 0 && connections_.count(c->id) != 0) flush(c);
  } catch (const std::exception& e) {
    log::error("http", "dropping a connection after an internal error",
               {{"peer", c->peer}, {"error", e.what()}});
    close(c);
  }
}

void HttpServer::Reactor::acceptAll() {
  for (;;) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    const int fd = ::accept4(listenFd_, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // The listening socket stays readable while we cannot accept: stop watching it for a
        // moment instead of spinning (and logging) at full speed.
        pauseAccepting();
      }
      return;
    }
    if (connections_.size() >= options_.maxConnections) {
      ::close(fd);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    auto c = std::make_shared<Connection>(fd, nextId_++,
                                          std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port)));
    if (options_.tls) c->tls = std::make_unique<TlsStream>(*options_.tls);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->id;
    ::epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(c->id, c);
    ++observe::Metrics::instance().openConnections;
  }
}

void HttpServer::Reactor::onReadable(const std::shared_ptr<Connection>& c) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(c->fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      const std::size_t before = c->in.size();
      if (c->tls) {
        if (!c->tls->receive(std::string_view(buffer, static_cast<std::size_t>(n)), c->in)) {
          // Bad handshake, bad record or close_notify. Send the alert (it tells the client
          // why, e.g. certificate expired) best-effort, then close.
          std::string alert;
          c->tls->drain(alert);
          if (!alert.empty()) (void)::send(c->fd, alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          if (c->tls->failure().rfind("client certificate", 0) == 0) {
            log::warn("tls", "client certificate refused",
                      {{"peer", c->peer}, {"reason", c->tls->failure()}});
          }
          close(c);
          return;
        }
        std::string engineOutput;  // handshake records, tickets, alerts
        c->tls->drain(engineOutput);
        if (!engineOutput.empty()) {
          {
            std::lock_guard lock(c->mutex);
            c->wire += engineOutput;
          }
          flush(c);
          if (connections_.count(c->id) == 0) return;
        }
      } else {
        c->in.append(buffer, static_cast<std::size_t>(n));
      }
      if (c->in.size() > before) c->lastActivity = Clock::now();  // request bytes, not TLS chatter
      // Bound what one connection may buffer (a pipelining or flooding client).
      if (c->in.size() > options_.maxHeaderBytes + options_.maxBodyBytes + 65536) {
        close(c);
        return;
      }
      // A short read means the socket is drained for now; epoll is level-triggered, so anything
      // that arrives later wakes us again. Skipping the EAGAIN probe saves a syscall per request.
      if (static_cast<std::size_t>(n) < sizeof buffer) break;
      continue;
    }
    if (n == 0) {
      close(c);
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    close(c);
    return;
  }
  if (c->phase != Connection::Phase::kBusy) parse(c);
}

void HttpServer::Reactor::parse(const std::shared_ptr<Connection>& c) {
  if (c->phase == Connection::Phase::kIdle || c->phase == Connection::Phase::kReadingHead) {
    if (c->in.empty()) return;
    if (c->phase == Connection::Phase::kIdle) {
      c->phase = Connection::Phase::kReadingHead;
      c->requestStarted = Clock::now();
    }
    const auto end = c->in.find("\r\n\r\n");
    if (end == std::string::npos || end + 4 > options_.maxHeaderBytes) {
      if (c->in.size() > options_.maxHeaderBytes || (end != std::string::npos)) {
        fail(c, 431, "request head exceeds " + std::to_string(options_.maxHeaderBytes) + " bytes");
      }
      return;
    }
    auto head = parseHead(std::string_view(c->in).substr(0, end + 4));
    c->rawHeaders = rawHeaderFields(std::string_view(c->in).substr(0, end + 4));
    const bool fieldsWellFormed = headerLinesWellFormed(std::string_view(c->in).substr(0, end + 4));
    c->in.erase(0, end + 4);
    if (!head) {
      fail(c, 400, head.error());
      return;
    }
    if (!fieldsWellFormed) {
      fail(c, 400, "malformed header field (RFC 9112: name, colon, value; no folding)");
      return;
    }
    c->head = std::move(head.value());
    auto framing = bodyFraming(c->rawHeaders, c->head->getVersion());
    if (!framing) {
      fail(c, framing.error().status, framing.error().message);
      return;
    }
    c->chunked = framing->chunked;
    c->chunkedDecoder = ChunkedDecoder{};
    const std::size_t length = framing->contentLength;
    if (!c->chunked && length > options_.maxBodyBytes) {
      fail(c, 413,
           "request body of " + std::to_string(length) + " bytes exceeds the limit of " +
               std::to_string(options_.maxBodyBytes) + " bytes (server.max_body_bytes)");
      return;
    }
    c->contentLength = length;
    if ((c->chunked || c->contentLength > 0) && c->head->has("Expect") &&
        Poco::icompare(c->head->get("Expect"), "100-continue") == 0) {
      {
        std::lock_guard lock(c->mutex);
        c->out += "HTTP/1.1 100 Continue\r\n\r\n";
      }
      flush(c);
    }
    c->phase = Connection::Phase::kReadingBody;
  }
  if (c->phase != Connection::Phase::kReadingBody) return;
  std::string body;
  if (c->chunked) {
    switch (c->chunkedDecoder.feed(c->in, options_.maxBodyBytes)) {
      case ChunkedStatus::kNeedMore:
        return;
      case ChunkedStatus::kTooLarge:
        fail(c, 413, "request body exceeds the limit of " + std::to_string(options_.maxBodyBytes) + " bytes");
        return;
      case ChunkedStatus::kMalformed:
        fail(c, 400, "malformed chunked request body");
        return;
      case ChunkedStatus::kComplete:
        body = std::move(c->chunkedDecoder.body);
        break;
    }
  } else {
    if (c->in.size() < c->contentLength) return;
    body = c->in.substr(0, c->contentLength);
    c->in.erase(0, c->contentLength);
  }
  dispatch(c, std::move(body));
}

void HttpServer::Reactor::dispatch(const std::shared_ptr<Connection>& c, std::string body) {
  c->phase = Connection::Phase::kBusy;
  // Poco::Net::HTTPRequest has no move constructor; the copy is one small header map.
  HttpRequest request{*c->head, std::move(c->rawHeaders), std::move(body),
                      c->peer,  c->tls != nullptr,        c->tls ? c->tls->peerCertificate() : nullptr};
  c->head.reset();
  {
    std::lock_guard lock(c->mutex);
    c->keepAlive = request.head.getKeepAlive();
    c->responseComplete = false;
    c->closeAfterWrite = false;
  }
  const bool headRequest = request.head.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD;
  auto channel = std::make_shared<ResponseChannel>(c, owner_, headRequest);
  auto req = std::make_shared<HttpRequest>(std::move(request));
  bool control = false;
  try {
    control = options_.isControl && options_.isControl(*req);
  } catch (const std::exception&) {
    control = false;  // classification is an optimisation; the handler reports real errors
  }
  auto task = [this, channel, req]() mutable {
    try {
      handler_(std::move(*req), channel);
    } catch (const std::exception& e) {
      log::error("http", "request handler failed", {{"error", e.what()}});
      channel->respond(500, {{"Content-Type", "text/plain"}}, "internal error\n");
    }
  };
  ThreadPool& pool = control ? controlPool_ : pool_;
  if (!pool.submit(std::move(task))) {
    channel->respond(503, {{"Content-Type", "text/plain"}, {"Retry-After", "1"}},
                     "the server is overloaded; retry shortly\n");
  }
}

void HttpServer::Reactor::fail(const std::shared_ptr<Connection>& c, int status, std::string_view message) {
  {
    std::lock_guard lock(c->mutex);
    c->out +=
        serializeHead(status, {{"Content-Type", "text/plain; charset=utf-8"}}, false, message.size() + 1);
    c->out.append(message).append("\n");
    c->responseComplete = true;
    c->closeAfterWrite = true;
  }
  observe::Metrics::instance().countHttpResponse(status);
  c->phase = Connection::Phase::kBusy;
  flush(c);
}

void HttpServer::Reactor::flush(const std::shared_ptr<Connection>& c) {
  bool finished = false;
  bool closeNow = false;
  {
    std::lock_guard lock(c->mutex);
    if (c->overflow) {
      closeNow = true;
      c->out.clear();
    }
    // With TLS, application bytes are encrypted into `wire` first; without, they go out as is.
    if (c->tls && !closeNow) {
      if (!c->out.empty() && !c->tls->send(c->out, c->wire)) closeNow = true;
      c->out.clear();
    }
    std::string& pendingBytes = c->tls ? c->wire : c->out;
    std::size_t sent = 0;
    while (!closeNow && sent < pendingBytes.size()) {
      const ssize_t n =
          ::send(c->fd, pendingBytes.data() + sent, pendingBytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      closeNow = true;
      break;
    }
    pendingBytes.erase(0, sent);
    if (!closeNow && c->out.empty() && c->wire.empty() && c->responseComplete) {
      finished = true;
      closeNow = c->closeAfterWrite;
      c->responseComplete = false;
      c->longLived = false;
      ++c->requestsServed;
    }
  }
  if (closeNow) {
    close(c);
    return;
  }
  bool pending = false;
  {
    std::lock_guard lock(c->mutex);
    pending = !c->out.empty() || !c->wire.empty();
  }
  armWrite(*c, pending);
  if (finished) {
    c->phase = Connection::Phase::kIdle;
    c->lastActivity = Clock::now();
    parse(c);  // a pipelined request may already be buffered
  }
}

void HttpServer::Reactor::armWrite(Connection& c, bool on) {
  if (c.writeArmed == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0U);
  ev.data.u64 = c.id;
  ::epoll_ctl(epollFd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.writeArmed = on;
}

void HttpServer::Reactor::close(const std::shared_ptr<Connection>& c) {
  if (connections_.erase(c->id) == 0) return;
  ::epoll_ctl(epollFd_, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(c->mutex);
    c->closed = true;
    c->out.clear();
    callbacks = takeCallbacks(*c);
  }
  --observe::Metrics::instance().openConnections;
  for (auto& cb : callbacks) cb();
}

void HttpServer::Reactor::watchListener(bool on) {
  epoll_event ev{};
  ev.events = on ? EPOLLIN : 0U;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epollFd_, EPOLL_CTL_MOD, listenFd_, &ev);
}

void HttpServer::Reactor::pauseAccepting() {
  if (acceptPausedUntil_) return;
  log::warn("http", "out of file descriptors; not accepting connections for 250 ms (raise LimitNOFILE)",
            {{"open_connections", connections_.size()}});
  watchListener(false);
  acceptPausedUntil_ = Clock::now() + std::chrono::milliseconds(250);
}

bool HttpServer::Reactor::busyRequests() const {
  for (const auto& [id, c] : connections_) {
    if (c->phase != Connection::Phase::kBusy) continue;
    std::lock_guard lock(c->mutex);
    if (!c->longLived) return true;
  }
  return false;
}

void HttpServer::Reactor::sweep() {
  const auto now = Clock::now();
  if (acceptPausedUntil_ && now >= *acceptPausedUntil_) {
    acceptPausedUntil_.reset();
    watchListener(true);
  }
  std::vector<std::shared_ptr<Connection>> expired;
  for (auto& [id, c] : connections_) {
    const bool reading =
        c->phase == Connection::Phase::kReadingHead || c->phase == Connection::Phase::kReadingBody;
    // A slow or stalled client (slowloris) loses its connection; it cannot hold a worker anyway.
    if (reading && now - c->requestStarted > options_.requestReadTimeout) expired.push_back(c);
    // A connection that has not sent a first request gets the short read timeout, so silent
    // sockets cannot hold connection slots for the whole keep-alive period.
    // Measured from accept, so bytes that never become a request (a TLS handshake trickled one
    // byte at a time) do not keep the slot either.
    const bool idle = c->phase == Connection::Phase::kIdle;
    const bool neverRequested = c->requestsServed == 0 && now - c->acceptedAt > options_.requestReadTimeout;
    const bool keptAliveTooLong = now - c->lastActivity > options_.idleTimeout;
    if (idle && (neverRequested || keptAliveTooLong)) expired.push_back(c);
  }
  for (auto& c : expired) close(c);
}

// ------------------------------------------------------------------------------------ server

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : reactor_(std::make_unique<Reactor>(*this, std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() = default;

Expected<std::uint16_t, std::string> HttpServer::bind() {
  return reactor_->bind();
}
void HttpServer::run() {
  reactor_->run();
}
void HttpServer::stop() {
  reactor_->stop();
}
void HttpServer::wake(const std::shared_ptr<Connection>& connection) {
  reactor_->wake(connection);
}
void HttpServer::onDrain(std::function<void()> hook, std::chrono::milliseconds timeout) {
  reactor_->drainHook_ = std::move(hook);
  reactor_->drainTimeout_ = timeout;
}

}  // namespace mcphost::transport
