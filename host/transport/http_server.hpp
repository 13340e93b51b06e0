// An event-driven HTTP/1.1 server: one epoll reactor thread owns every socket, so thousands of
// idle keep-alive connections and long-lived SSE streams cost a few kilobytes each instead of a
// thread each. Request heads are parsed by Poco (HTTPRequest::read); handlers run on a bounded
// worker pool and answer through a ResponseChannel that may stream (chunked) for SSE.
// Linux only (epoll/eventfd); the Windows build needs an IOCP or WSAPoll reactor here.
#pragma once

#include <Poco/Net/HTTPRequest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "auth/client_certificate.hpp"
#include "common/expected.hpp"
#include "transport/tls.hpp"

namespace mcphost::transport {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  Poco::Net::HTTPRequest head;
  HeaderList rawHeaders;  // as sent, for headers whose exact bytes matter
  std::string body;
  std::string peer;  // "ip:port"
  bool tls = false;
  // The verified client certificate of an mTLS connection; null otherwise.
  std::shared_ptr<const auth::ClientCertificate> clientCertificate;
};

class Connection;
class HttpServer;

// The answer side of one request. Thread-safe; every call after the peer left is a no-op.
class ResponseChannel {
 public:
  ResponseChannel(std::shared_ptr<Connection> connection, HttpServer& server, bool headRequest);
  ~ResponseChannel();
  ResponseChannel(const ResponseChannel&) = delete;
  ResponseChannel& operator=(const ResponseChannel&) = delete;

  void respond(int status, const HeaderList& headers, std::string_view body);
  // Starts a chunked response; write() sends chunks; end() finishes it.
  // flush=false queues the bytes without waking the reactor: they leave with the next flushed
  // write (saves a syscall round per request when a stream opens and answers at once).
  void startStream(int status, const HeaderList& headers, bool flush = true);
  bool write(std::string_view data, bool flush = true);
  void end();
  // Drops the connection without finishing the response.
  void abort();
  [[nodiscard]] bool open() const;
  [[nodiscard]] bool started() const { return started_.load(); }
  // A stream that lives until the client leaves (GET, subscriptions): shutdown ends it instead
  // of waiting for it.
  void markLongLived();
  // Runs once when the peer disconnects or the response ends (whichever first).
  void onClose(std::function<void()> callback);

 private:
  std::shared_ptr<Connection> connection_;
  HttpServer& server_;
  bool headRequest_;
  std::atomic<bool> started_{false};
  std::atomic<bool> finished_{false};
};

using HttpHandler = std::function<void(HttpRequest&& request, std::shared_ptr<ResponseChannel> channel)>;
// True for requests that never block (client answers, notifications, health checks): they run
// on a separate small pool so they are served even while every worker waits on a client.
using ControlClassifier = std::function<bool(const HttpRequest& request)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free port, see boundPort()
  std::size_t maxHeaderBytes = std::size_t{16} << 10;
  std::size_t maxBodyBytes = std::size_t{4} << 20;
  std::chrono::milliseconds requestReadTimeout{10000};  // head and body must arrive within this
  std::chrono::milliseconds idleTimeout{120000};        // keep-alive connections with no request
  std::size_t maxConnections = 20000;
  std::size_t workerThreads = 32;
  std::size_t maxQueuedRequests = 4096;
  std::shared_ptr<TlsContext> tls;  // null: plain HTTP
  std::size_t controlThreads = 2;
  ControlClassifier isControl;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; the port in use is returned (useful with port 0).
  Expected<std::uint16_t, std::string> bind();
  void run();   // serves until stop(); call from one thread
  void stop();  // async-signal-safe
  // On stop: hook runs first (end sessions and streams), then requests in flight get up to
  // timeout to finish before every connection is dropped.
  void onDrain(std::function<void()> hook, std::chrono::milliseconds timeout);

  // Called by ResponseChannel: data queued for a connection; the reactor flushes it.
  void wake(const std::shared_ptr<Connection>& connection);

 private:
  class Reactor;
  std::unique_ptr<Reactor> reactor_;
};

}  // namespace mcphost::transport
