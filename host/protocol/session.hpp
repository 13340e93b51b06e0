// Protocol state of one initialize/session-era MCP session: negotiated version, client
// capabilities, log level, resource subscriptions, in-flight requests (for cancellation) and
// outstanding server-to-client requests. Transport state (streams, replay buffers) lives in the
// transport layer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "connectors/connector.hpp"
#include "protocol/json_rpc.hpp"
#include "protocol/message_sink.hpp"

namespace mcphost::protocol {

class Session {
 public:
  Session(std::string id, std::string version, Json clientCapabilities, Json clientInfo);

  [[nodiscard]] const std::string& id() const { return id_; }
  [[nodiscard]] const std::string& version() const { return version_; }
  [[nodiscard]] const Json& clientCapabilities() const { return clientCapabilities_; }
  [[nodiscard]] const Json& clientInfo() const { return clientInfo_; }

  void markInitialized() { initialized_ = true; }
  [[nodiscard]] bool initialized() const { return initialized_; }

  void setLogLevel(connectors::LogLevel level);
  // Null until the client sets a level: then every message is sent.
  [[nodiscard]] std::optional<connectors::LogLevel> logLevel() const;

  static constexpr std::size_t kMaxSubscriptions = 1000;
  // False when the session already holds kMaxSubscriptions.
  bool subscribe(const std::string& uri);
  void unsubscribe(const std::string& uri);
  [[nodiscard]] bool subscribed(std::string_view uri) const;

  // Cancellation: the flag a running handler polls, keyed by the client's request id.
  std::shared_ptr<std::atomic<bool>> beginRequest(const Json& id);
  void endRequest(const Json& id);
  void cancelRequest(const Json& id);

  // Sends a request to the client through sink and waits for its answer.
  Expected<Json, RpcError> callClient(std::string_view method, const Json& params, MessageSink& sink,
                                      std::chrono::milliseconds timeout, const std::atomic<bool>* cancelled);
  // Routes a client response to the waiting callClient; false when nobody waits for that id.
  bool deliverResponse(const Message& response);
  // Fails every waiting callClient and refuses new ones (shutdown or session end).
  void abandonClientCalls();
  // Marks every request in flight as cancelled (the session ended).
  void cancelAll();

 private:
  struct PendingCall {
    std::optional<Expected<Json, RpcError>> outcome;
  };

  std::string id_;
  std::string version_;
  Json clientCapabilities_;
  Json clientInfo_;
  std::atomic<bool> initialized_{false};

  mutable std::mutex mutex_;
  std::condition_variable answered_;
  std::optional<connectors::LogLevel> logLevel_;
  std::set<std::string, std::less<>> subscriptions_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> inFlight_;
  std::int64_t nextOutboundId_ = 0;
  std::map<std::int64_t, std::shared_ptr<PendingCall>> pending_;
  bool closing_ = false;
};

}  // namespace mcphost::protocol
