// The MCP Streamable HTTP endpoint (one path, POST/GET/DELETE) serving both protocol eras, plus
// the operational endpoints /healthz, /readyz and /metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/auth_chain.hpp"
#include "guard/call_limits.hpp"
#include "protocol/change_bus.hpp"
#include "protocol/mcp_router.hpp"
#include "transport/http_server.hpp"
#include "transport/session_store.hpp"

namespace mcphost::transport {

struct EndpointOptions {
  std::string path = "/mcp";
  // Host header values accepted (host part, any port); loopback names by default. Protects
  // against DNS rebinding. Empty list with rebindingProtection=false accepts any host.
  std::vector<std::string> allowedHosts = {"localhost", "127.0.0.1", "[::1]"};
  std::vector<std::string> allowedOrigins;  // extra Origin values (scheme://host[:port]) accepted
  bool rebindingProtection = true;
  protocol::ParseLimits limits;
  int sseRetryMs = 500;
  // Session-era requests answer with a primed SSE stream, so any response can be resumed with
  // Last-Event-ID after a dropped connection; false answers plain JSON unless the handler
  // sends messages first.
  bool resumableResponses = true;
  bool accessLog = true;
  SessionLimits sessions;
  // Authentication (null or disabled: every caller is anonymous) and rate limits (null: none).
  std::shared_ptr<auth::AuthChain> auth;
  std::shared_ptr<guard::CallLimits> rateLimits;
};

// Readiness: empty when ready, else the reasons.
using ReadinessProbe = std::function<std::vector<std::string>()>;

class StreamableHttpEndpoint {
 public:
  StreamableHttpEndpoint(EndpointOptions options, protocol::McpRouter& router, connectors::Catalog& catalog,
                         std::shared_ptr<protocol::ChangeBus> bus, ReadinessProbe readiness);
  ~StreamableHttpEndpoint();

  void handle(HttpRequest&& request, const std::shared_ptr<ResponseChannel>& channel);
  // Requests that never wait on a client or a connector (see ControlClassifier).
  [[nodiscard]] bool isControlRequest(const HttpRequest& request) const;
  void beginShutdown();  // fails waits on clients and ends GET streams; in-flight requests go on
  void shutdown();       // closes every session and stream

 private:
  struct Exchange;
  void handleMcp(Exchange& ex);
  bool authenticate(Exchange& ex);  // false when it answered (401/403/429/503)
  bool admitToolCall(Exchange& ex, const protocol::Message& message);
  void handlePost(Exchange& ex);
  void handleGet(Exchange& ex);
  void handleDelete(Exchange& ex);
  void handleInitialize(Exchange& ex, const protocol::Message& message);
  void handleSessionMessage(Exchange& ex, const protocol::Message& message);
  void handleStateless(Exchange& ex, const protocol::Message& message);
  void handleListen(Exchange& ex, const protocol::Message& message);
  std::shared_ptr<HttpSession> requireSession(Exchange& ex);
  [[nodiscard]] std::optional<std::string> rebindingViolation(const Poco::Net::HTTPRequest& head) const;
  void subscribeSession(const std::shared_ptr<HttpSession>& session);

  EndpointOptions options_;
  protocol::McpRouter& router_;
  connectors::Catalog& catalog_;
  std::shared_ptr<protocol::ChangeBus> bus_;
  ReadinessProbe readiness_;
  SessionStore sessions_;
};

}  // namespace mcphost::transport
