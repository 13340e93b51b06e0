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

namespace mcphost::dlp {
class Engine;
}
namespace mcphost::audit {
class AuditLog;
}
namespace mcphost::guard {
class ArgumentValidator;
}

namespace mcphost::protocol {

// JSON-RPC code when audit.fail_closed refuses a request because the audit log cannot be
// written (HTTP 503 on the stateless era).
inline constexpr int kAuditUnavailable = -32031;

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

// What the router learns about one request for its audit record (router_audit.cpp).
struct AuditNote {
  std::string connector;
  std::string target;    // exposed tool/prompt name or resource URI
  std::string region;    // the region instance that served it (data residency)
  std::string decision;  // "allow" or "deny" when the policy was asked; "" otherwise
  std::string rule;
  Json dlp = Json::array();  // [{detector, rule, action, count}]
  std::string argsSha256;
  Json args;  // the arguments with secrets and detected personal data redacted
  bool toolError = false;
  std::string refusal;  // why the host refused before the connector ran (invalid_arguments, ...)
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
  std::string correlationId;     // the X-Request-Id of the HTTP exchange; empty on stdio
  std::size_t requestBytes = 0;  // the size of the request as received (for the audit record)
  AuditNote audit;
};

// The data-protection stages around a connector call; each is optional.
struct DataGuards {
  std::shared_ptr<guard::ArgumentValidator> validator;  // inputSchema checks of tools/call
  std::shared_ptr<const dlp::Engine> dlp;               // masking of results, inbound secret scan
  std::shared_ptr<audit::AuditLog> audit;               // one record per request
  bool auditFailClosed = true;  // refuse requests while the audit log cannot be written
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
  void setDataGuards(DataGuards guards) { data_ = std::move(guards); }
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
  // Routes a regional target to the caller's region instance (data residency), then asks the
  // policy; nullopt when allowed. Also prepares the caller for the connector.
  std::optional<RpcError> checkAccess(policy::Action action, std::string_view kind,
                                      connectors::Catalog::Target& target, std::string_view exposedName,
                                      const Json* arguments, RequestScope& scope) const;
  // Data protection (router_protection.cpp): argument checks before a call, DLP after it.
  [[nodiscard]] std::optional<Json> refuseArguments(const std::string& tool, const Json& arguments,
                                                    RequestScope& scope) const;
  std::optional<RpcError> protectResult(std::string_view kind, const connectors::Catalog::Target& target,
                                        std::string_view name, Json& result, RequestScope& scope) const;
  // Audit (router_audit.cpp): refuse while the log is down (fail closed), then record the outcome.
  [[nodiscard]] std::optional<RpcError> auditGate() const;
  void recordAudit(const Message& request, RequestScope& scope, Reply& reply,
                   std::chrono::microseconds elapsed) const;
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
  DataGuards data_;
};

}  // namespace mcphost::protocol
