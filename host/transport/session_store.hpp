// The 2025-era MCP sessions of the HTTP transport: protocol state plus the session's resumable
// streams and its standalone (GET) stream. Sessions expire when idle and are capped in number
// (the oldest idle one is evicted), because clients routinely never send DELETE.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "protocol/change_bus.hpp"
#include "protocol/session.hpp"
#include "transport/sse_stream.hpp"

namespace mcphost::transport {

class HttpSession {
 public:
  HttpSession(std::shared_ptr<protocol::Session> session, std::size_t maxStreams);

  [[nodiscard]] protocol::Session& protocol() { return *session_; }
  [[nodiscard]] std::shared_ptr<protocol::Session> protocolPtr() { return session_; }
  void touch();
  [[nodiscard]] std::chrono::steady_clock::time_point lastActivity() const;

  std::shared_ptr<StreamLog> newStream();
  std::shared_ptr<StreamLog> findStream(const std::string& id);
  // The standalone stream (GET); null when none is open.
  std::shared_ptr<StreamLog> standalone();
  bool setStandalone(std::shared_ptr<StreamLog> log);  // false when one is already live
  void setBusToken(std::shared_ptr<void> token);
  void close();
  // The principal that created the session ("method:subject"); set once, right after create.
  // Every later request must come from the same principal, so a leaked session id alone is
  // useless to someone else.
  void bindOwner(std::string owner) { owner_ = std::move(owner); }
  [[nodiscard]] const std::string& owner() const { return owner_; }

 private:
  std::shared_ptr<protocol::Session> session_;
  std::size_t maxStreams_;
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point lastActivity_;
  std::uint64_t nextStream_ = 1;
  std::map<std::uint64_t, std::shared_ptr<StreamLog>> streams_;  // by creation order
  std::shared_ptr<StreamLog> standalone_;
  std::shared_ptr<void> busToken_;
  std::string owner_;
};

struct SessionLimits {
  std::size_t maxSessions = 100000;
  std::chrono::milliseconds idleTimeout{std::chrono::minutes(30)};
  std::size_t maxStreamsPerSession = 32;
};

class SessionStore {
 public:
  explicit SessionStore(SessionLimits limits);
  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  std::shared_ptr<HttpSession> create(std::shared_ptr<protocol::Session> session);
  std::shared_ptr<HttpSession> find(const std::string& id);
  bool remove(const std::string& id);
  void closeAll();
  // Shutdown, first phase: calls waiting on clients fail and standalone streams end, while
  // requests in flight keep their streams so their answers still arrive.
  void beginShutdown();
  [[nodiscard]] std::size_t size() const;

 private:
  void expireLoop();
  void expireIdle();

  SessionLimits limits_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<HttpSession>> sessions_;
  std::condition_variable stopSignal_;
  bool stopping_ = false;
  std::thread expirer_;
};

}  // namespace mcphost::transport
