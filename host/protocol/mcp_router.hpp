// MCP method dispatch for both protocol eras: validates params, routes to the connector that owns
// the item through the catalog, maps multi-round-trip input requests to the caller's era, and
// shapes results for the caller's revision (resultType, cache hints, server info on 2026-07-28).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "connectors/catalog.hpp"
#include "guard/access_guard.hpp"
#include "protocol/json_rpc.hpp"
#include "protocol/message_sink.hpp"
#include "protocol/request_state.hpp"
#include "protocol/session.hpp"
#include "protocol/task_store.hpp"
#include "protocol/versions.hpp"

namespace mcphost::protocol {

struct ServerIdentity {
  std::string name = "mcphost";
  std::string version;
  std::string instructions;
};

struct RouterOptions {
  std::size_t pageSize = 500;
  std::chrono::milliseconds clientRequestTimeout{60000};
  int maxInputRounds = 8;
};

// Everything the router needs to know about the request at hand, filled by the transport.
struct RequestScope {
  Era era = Era::kSession;
  std::shared_ptr<Session> session;  // session era only
  std::string protocolVersion;
  Json clientCapabilities = Json::object();
  Json meta = Json::object();   // params._meta
  MessageSink* sink = nullptr;  // notifications and server-to-client requests for this request
  std::function<void()> closeStream;
  connectors::Caller caller;
  std::shared_ptr<std::atomic<bool>> cancelled;
  std::string correlationId;  // the X-Request-Id of the HTTP exchange; empty on stdio
};

struct Reply {
  Json message;  // the JSON-RPC response
  int httpStatus = 200;
};

class McpRouter {
 public:
  McpRouter(connectors::Catalog& catalog, ServerIdentity identity, RouterOptions options);

  // Answers one JSON-RPC request (never a notification or response).
  Reply handle(const Message& request, RequestScope& scope);
  // Applies a client notification (initialized, cancelled, roots/list_changed, ...).
  void notify(const Message& notification, RequestScope& scope);

  // Version negotiation: the client's version when we serve it, else our latest.
  [[nodiscard]] static std::string negotiateVersion(const Json& requested);
  [[nodiscard]] Json initializeResult(const std::string& version) const;
  [[nodiscard]] Json capabilities(Era era) const;
  [[nodiscard]] const ServerIdentity& identity() const { return identity_; }
  // Policy and token exchange; without one everything is allowed (authentication off).
  void setAccessGuard(std::shared_ptr<const guard::AccessGuard> guard) { guard_ = std::move(guard); }
  // Whether the policy could let this caller call the tool (shared per-tool rate-limit buckets
  // are only drawn on by callers that may use the tool, so nobody can drain another's budget).
  [[nodiscard]] bool mayCallTool(const connectors::Caller& who, std::string_view exposedName) const;

  // subscriptions/listen: the filter the server honours (request filter narrowed to what the
  // server advertises), or an error for malformed params.
  [[nodiscard]] Expected<Json, RpcError> listenFilter(const Json& params) const;
  // HTTP status a stateless-era error maps to (404 for -32601, 400 for protocol-level errors).
  [[nodiscard]] static int statusForError(int code);
  // Decorates a stateless-era result (resultType, cache hints, server info).
  [[nodiscard]] Json statelessResult(std::string_view method, Json result) const;

 private:
  Expected<Json, RpcError> dispatch(const Message& request, RequestScope& scope);
  // Lists filtered per caller (router_access.cpp): a caller never sees what it may not use.
  enum class ListKind { kTools, kResources, kResourceTemplates, kPrompts };
  [[nodiscard]] Json visibleItems(ListKind kind, const RequestScope& scope) const;
  // Policy check for one item; nullopt when allowed. Also prepares the caller for the connector.
  std::optional<RpcError> checkAccess(policy::Action action, std::string_view kind,
                                      const connectors::Catalog::Target& target, std::string_view exposedName,
                                      const Json* arguments, RequestScope& scope) const;
  Expected<Json, RpcError> callTool(const Json& params, RequestScope& scope);
  Expected<Json, RpcError> readResource(const Json& params, RequestScope& scope);
  Expected<Json, RpcError> getPrompt(const Json& params, RequestScope& scope);
  Expected<Json, RpcError> complete(const Json& params, RequestScope& scope);
  Expected<Json, RpcError> subscription(const Json& params, RequestScope& scope, bool subscribe);
  Expected<Json, RpcError> setLogLevel(const Json& params, RequestScope& scope);
  Expected<Json, RpcError> taskMethod(const std::string& method, const Json& params, RequestScope& scope);

  // Runs a connector operation, resolving InputRequired per era; see connector.hpp.
  using Operation = std::function<connectors::Outcome(connectors::CallContext&)>;
  Expected<Json, RpcError> runWithInput(const Operation& op, const std::string& binding, const Json& params,
                                        RequestScope& scope);

  Expected<Json, RpcError> paginate(const Json& items, const char* key, const Json& params) const;

  connectors::Catalog& catalog_;
  ServerIdentity identity_;
  RouterOptions options_;
  RequestStateCodec stateCodec_;
  TaskStore tasks_;
  std::shared_ptr<const guard::AccessGuard> guard_;
};

}  // namespace mcphost::protocol
