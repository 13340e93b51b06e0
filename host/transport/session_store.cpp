#include "transport/session_store.hpp"

#include "observe/log.hpp"
#include "observe/metrics.hpp"

namespace mcphost::transport {

HttpSession::HttpSession(std::shared_ptr<protocol::Session> session, std::size_t maxStreams)
    : session_(std::move(session)),
      maxStreams_(maxStreams),
      lastActivity_(std::chrono::steady_clock::now()) {}

void HttpSession::touch() {
  std::lock_guard lock(mutex_);
  lastActivity_ = std::chrono::steady_clock::now();
}

std::chrono::steady_clock::time_point HttpSession::lastActivity() const {
  std::lock_guard lock(mutex_);
  return lastActivity_;
}

std::shared_ptr<StreamLog> HttpSession::newStream() {
  std::lock_guard lock(mutex_);
  const std::uint64_t number = nextStream_++;
  auto log = std::make_shared<StreamLog>("s" + std::to_string(number), 1000);
  streams_.emplace(number, log);
  // Keys grow monotonically, so the first entry is the oldest stream.
  while (streams_.size() > maxStreams_) streams_.erase(streams_.begin());
  return log;
}

std::shared_ptr<StreamLog> HttpSession::findStream(const std::string& id) {
  if (id.size() < 2 || id[0] != 's' || id.find_first_not_of("0123456789", 1) != std::string::npos ||
      id.size() > 20) {
    return nullptr;
  }
  std::uint64_t number = 0;
  try {
    number = std::stoull(id.substr(1));
  } catch (const std::exception&) {
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  auto it = streams_.find(number);
  return it == streams_.end() ? nullptr : it->second;
}

std::shared_ptr<StreamLog> HttpSession::standalone() {
  std::lock_guard lock(mutex_);
  return standalone_;
}

bool HttpSession::setStandalone(std::shared_ptr<StreamLog> log) {
  std::lock_guard lock(mutex_);
  if (standalone_ && standalone_->live()) return false;
  standalone_ = std::move(log);
  return true;
}

void HttpSession::setBusToken(std::shared_ptr<void> token) {
  std::lock_guard lock(mutex_);
  busToken_ = std::move(token);
}

void HttpSession::close() {
  session_->abandonClientCalls();
  session_->cancelAll();
  std::map<std::uint64_t, std::shared_ptr<StreamLog>> streams;
  std::shared_ptr<StreamLog> standalone;
  {
    std::lock_guard lock(mutex_);
    streams.swap(streams_);
    standalone.swap(standalone_);
    busToken_.reset();
  }
  for (auto& [id, s] : streams) s->close();
  if (standalone) standalone->close();
}

SessionStore::SessionStore(SessionLimits limits) : limits_(limits), expirer_([this] { expireLoop(); }) {}

SessionStore::~SessionStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stopSignal_.notify_all();
  if (expirer_.joinable()) expirer_.join();
  closeAll();
}

std::shared_ptr<HttpSession> SessionStore::create(std::shared_ptr<protocol::Session> session) {
  auto http = std::make_shared<HttpSession>(std::move(session), limits_.maxStreamsPerSession);
  std::shared_ptr<HttpSession> evicted;
  {
    std::lock_guard lock(mutex_);
    if (sessions_.size() >= limits_.maxSessions) {
      auto oldest = sessions_.begin();
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        if (it->second->lastActivity() < oldest->second->lastActivity()) oldest = it;
      }
      evicted = oldest->second;
      sessions_.erase(oldest);
    }
    sessions_.emplace(http->protocol().id(), http);
    observe::Metrics::instance().activeSessions = static_cast<long>(sessions_.size());
  }
  if (evicted) {
    log::warn("session", "session limit reached; evicted the least recently used session",
              {{"limit", limits_.maxSessions}});
    evicted->close();
  }
  return http;
}

std::shared_ptr<HttpSession> SessionStore::find(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

bool SessionStore::remove(const std::string& id) {
  std::shared_ptr<HttpSession> session;
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return false;
    session = it->second;
    sessions_.erase(it);
    observe::Metrics::instance().activeSessions = static_cast<long>(sessions_.size());
  }
  session->close();
  return true;
}

void SessionStore::closeAll() {
  std::map<std::string, std::shared_ptr<HttpSession>> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(sessions_);
    observe::Metrics::instance().activeSessions = 0;
  }
  for (auto& [id, s] : all) s->close();
}

void SessionStore::beginShutdown() {
  std::vector<std::shared_ptr<HttpSession>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) {
    s->protocol().abandonClientCalls();
    if (auto stream = s->standalone()) stream->close();
  }
}

std::size_t SessionStore::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

void SessionStore::expireLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    stopSignal_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    lock.unlock();
    expireIdle();
    lock.lock();
  }
}

void SessionStore::expireIdle() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<HttpSession>> expired;
  {
    std::lock_guard lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      // A client listening on its GET stream is active even when it sends nothing.
      if (auto stream = it->second->standalone(); stream && stream->live()) {
        it->second->touch();
        ++it;
        continue;
      }
      if (now - it->second->lastActivity() > limits_.idleTimeout) {
        expired.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
    observe::Metrics::instance().activeSessions = static_cast<long>(sessions_.size());
  }
  for (auto& s : expired) s->close();
}

}  // namespace mcphost::transport
