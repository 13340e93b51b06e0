#include "protocol/session.hpp"

namespace mcphost::protocol {

Session::Session(std::string id, std::string version, Json clientCapabilities, Json clientInfo)
    : id_(std::move(id)),
      version_(std::move(version)),
      clientCapabilities_(std::move(clientCapabilities)),
      clientInfo_(std::move(clientInfo)) {}

void Session::setLogLevel(connectors::LogLevel level) {
  std::lock_guard lock(mutex_);
  logLevel_ = level;
}

std::optional<connectors::LogLevel> Session::logLevel() const {
  std::lock_guard lock(mutex_);
  return logLevel_;
}

bool Session::subscribe(const std::string& uri) {
  std::lock_guard lock(mutex_);
  if (subscriptions_.size() >= kMaxSubscriptions && subscriptions_.count(uri) == 0) return false;
  subscriptions_.insert(uri);
  return true;
}

void Session::unsubscribe(const std::string& uri) {
  std::lock_guard lock(mutex_);
  subscriptions_.erase(uri);
}

bool Session::subscribed(std::string_view uri) const {
  std::lock_guard lock(mutex_);
  return subscriptions_.find(uri) != subscriptions_.end();
}

std::shared_ptr<std::atomic<bool>> Session::beginRequest(const Json& id) {
  auto flag = std::make_shared<std::atomic<bool>>(false);
  std::lock_guard lock(mutex_);
  inFlight_[id.dump()] = flag;
  return flag;
}

void Session::endRequest(const Json& id) {
  std::lock_guard lock(mutex_);
  inFlight_.erase(id.dump());
}

void Session::cancelRequest(const Json& id) {
  std::lock_guard lock(mutex_);
  if (auto it = inFlight_.find(id.dump()); it != inFlight_.end()) it->second->store(true);
  answered_.notify_all();  // a handler waiting on the client notices the cancellation
}

Expected<Json, RpcError> Session::callClient(std::string_view method, const Json& params, MessageSink& sink,
                                             std::chrono::milliseconds timeout,
                                             const std::atomic<bool>* cancelled) {
  auto call = std::make_shared<PendingCall>();
  std::int64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    if (closing_) return unexpected(RpcError{errc::kInternalError, "the MCP session is closing", nullptr});
    id = nextOutboundId_++;
    pending_.emplace(id, call);
  }
  if (!sink.send(makeRequest(id, method, params))) {
    std::lock_guard lock(mutex_);
    pending_.erase(id);
    return unexpected(RpcError{errc::kInternalError,
                               "the client stream closed before " + std::string(method) + " could be sent",
                               nullptr});
  }
  std::unique_lock lock(mutex_);
  const bool done = answered_.wait_for(lock, timeout, [&] {
    return call->outcome.has_value() || closing_ || (cancelled != nullptr && cancelled->load());
  });
  pending_.erase(id);
  if (call->outcome) return std::move(*call->outcome);
  if (!done) {
    return unexpected(RpcError{errc::kRequestTimeout,
                               "the client did not answer " + std::string(method) + " within " +
                                   std::to_string(timeout.count()) + " ms",
                               nullptr});
  }
  return unexpected(RpcError{errc::kInternalError, "cancelled while waiting for the client", nullptr});
}

bool Session::deliverResponse(const Message& response) {
  if (!response.id.is_number_integer()) return false;
  std::lock_guard lock(mutex_);
  auto it = pending_.find(response.id.get<std::int64_t>());
  if (it == pending_.end()) return false;
  if (response.error) {
    it->second->outcome = unexpected(*response.error);
  } else {
    it->second->outcome = response.result;
  }
  answered_.notify_all();
  return true;
}

void Session::abandonClientCalls() {
  std::lock_guard lock(mutex_);
  closing_ = true;
  answered_.notify_all();
}

void Session::cancelAll() {
  std::lock_guard lock(mutex_);
  for (auto& [id, flag] : inFlight_) flag->store(true);
  answered_.notify_all();
}

}  // namespace mcphost::protocol
