// A "remote" connector: an upstream MCP server reached over Streamable HTTP and federated into
// the catalog, so one mcphost can front others. It is an MCP *client* of the 2025-11-25
// session era: initialize (clientInfo mcphost, capabilities {}), notifications/initialized,
// then every request a POST carrying Mcp-Session-Id and MCP-Protocol-Version.
//
// What it does not do yet: it declares no client capabilities, so upstream tools that need
// elicitation, sampling or roots answer with an error through it; it does not speak the
// stateless 2026-07-28 era to the upstream (a dual-era upstream answers initialize; a
// stateless-only one is not supported); upstream tasks are not used.
//
// Availability: the first describe() connects. When the upstream is down, describe() fails
// (the catalog leaves the connector out and /readyz names it) and a background retry with
// backoff reconnects, then publishes list changes so the catalog picks the tools up. While
// connected it holds the upstream's GET stream (when the server announces listChanged or
// subscribe) and relays notifications/*/list_changed and resources/updated.
//
// Progress: every call carries a progress token of ours upstream, mapped back to the client's;
// the host drops progress when the client gave no token (CallContext cannot say whether it did).
//
// Only the configured headers go upstream: the calling client's credentials never do.
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
#include <thread>

#include "connectors/connector.hpp"
#include "connectors/remote/remote_http.hpp"

namespace mcphost::connectors {

struct RemoteSpec {
  std::string connectorId;
  std::string url;                             // http:// or https://, no userinfo
  std::map<std::string, std::string> headers;  // resolved values ("secret:NAME" already read)
  std::chrono::milliseconds callTimeout{60000};
  std::chrono::milliseconds startTimeout{10000};  // TCP/TLS connect, and initialize
  std::chrono::milliseconds backoffInitial{500};
  std::chrono::milliseconds backoffMax{30000};
  std::size_t maxResponseBytes = std::size_t{8} << 20;  // one JSON body or one SSE event
  int maxJsonDepth = 64;
  std::size_t maxListPages = 100;  // per list method; a server that pages forever is cut off
  bool listen = true;              // hold the upstream's GET stream for list_changed/updated
};

// A snapshot for /readyz, metrics and logs.
struct RemoteStatus {
  std::string state;  // "starting", "ready", "reconnecting", "invalid", "stopped"
  std::string lastError;
  std::string protocolVersion;  // negotiated with the upstream; empty when not connected
};

class RemoteConnector final : public Connector {
  struct Private {
    explicit Private() = default;
  };

 public:
  static std::shared_ptr<RemoteConnector> create(RemoteSpec spec);
  RemoteConnector(Private, RemoteSpec spec);  // use create(): it starts the background threads
  ~RemoteConnector() override;
  RemoteConnector(const RemoteConnector&) = delete;
  RemoteConnector& operator=(const RemoteConnector&) = delete;

  void attach(ConnectorEvents* events) override;
  Expected<Descriptor, RpcError> describe() override;
  Outcome callTool(std::string_view name, const Json& arguments, CallContext& ctx) override;
  Outcome readResource(std::string_view uri, CallContext& ctx) override;
  Outcome getPrompt(std::string_view name, const Json& arguments, CallContext& ctx) override;
  Outcome complete(const Json& ref, const Json& argument, const Json& context, CallContext& ctx) override;
  Outcome subscribe(std::string_view uri) override;
  Outcome unsubscribe(std::string_view uri) override;

  [[nodiscard]] RemoteStatus status() const;
  // Stops the background threads, fails calls in flight and ends the upstream session. Idempotent.
  void shutdown();

 private:
  enum class State { kStarting, kReady, kReconnecting, kInvalid, kStopped };
  enum class Waited { kDone, kCancelled, kTimedOut, kStopped };
  struct Session {
    std::string id;       // Mcp-Session-Id; empty when the server keeps no sessions
    std::string version;  // negotiated protocol revision
    Json capabilities = Json::object();
    std::uint64_t generation = 0;
  };
  using Result = Expected<Json, RpcError>;

  Result roundTrip(const std::string& method, const Json& params, CallContext* ctx,
                   std::chrono::milliseconds timeout, const std::string& label);
  Result exchangeWithRetry(const std::string& method, const Json& params, CallContext* ctx,
                           std::chrono::milliseconds timeout, const std::string& label);
  Waited await(remote::Exchange& ex, CallContext* ctx, const Json& progressToken);
  Result interpret(const remote::Exchange& ex, Waited waited, const std::string& label,
                   std::chrono::milliseconds timeout);
  Expected<Session, RpcError> acquireSession(const std::string& label);
  Expected<Session, RpcError> reinitialize(std::uint64_t failedGeneration, const std::string& label);
  Expected<Session, RpcError> initialize();
  // A message that expects no JSON-RPC answer (notification, response, DELETE); true on 2xx.
  bool post(const Session& session, Json message, const std::string& method = "POST",
            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void onServerMessage(Json&& message, const Session& session);
  Result listAll(const char* method, const char* key, const char* capability);
  bool refresh(int notified, bool publish);
  void publishChanges(const Json& before, const Json& after, int notified);
  void markUnavailable(const std::string& why);
  void maintain();
  void listen();
  [[nodiscard]] RpcError failure(const std::string& label, const std::string& what,
                                 int code = protocol::errc::kInternalError) const;
  [[nodiscard]] RpcError unavailable(const std::string& label) const;  // mutex_ held
  [[nodiscard]] std::string reasonOf(const std::string& message) const;
  [[nodiscard]] bool supports(const char* capability, const char* flag = nullptr) const;

  RemoteSpec spec_;
  std::string url_;  // for messages: no userinfo, no query
  std::unique_ptr<remote::HttpClient> http_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::mutex initMutex_;    // one initialize at a time
  std::mutex eventsMutex_;  // guards events_ and is held while publishing through it
  ConnectorEvents* events_ = nullptr;
  State state_ = State::kStarting;
  std::string lastError_;
  std::optional<Session> session_;
  std::uint64_t generations_ = 0;
  Json descriptor_;  // {tools, resources, resourceTemplates, prompts}; null until described once
  bool describing_ = false;
  std::chrono::milliseconds backoff_;
  remote::Clock::time_point nextAttempt_{};
  int pendingRelist_ = 0;  // kinds announced by the upstream (or a re-initialize) not yet re-listed
  bool resubscribe_ = false;
  bool streamUnsupported_ = false;
  std::set<std::string, std::less<>> subscriptions_;
  remote::Exchange* listening_ = nullptr;  // the open GET stream, for abort()
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> nextId_{1};
  std::thread maintainer_;
  std::thread listener_;
};

}  // namespace mcphost::connectors
