#include "transport/streamable_http.hpp"

#include <Poco/URI.h>

#include <algorithm>

#include "common/crypto.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "transport/exchange.hpp"
#include "transport/stateless_headers.hpp"

namespace mcphost::transport {

using protocol::Json;
using protocol::Message;
using protocol::MessageKind;
namespace errc = protocol::errc;

namespace {

constexpr int kServerError = -32000;  // transport-level errors, as the TypeScript SDK reports them

bool acceptsType(const Poco::Net::HTTPRequest& head, std::string_view type) {
  if (!head.has("Accept")) return false;
  const std::string& accept = head.get("Accept");
  return accept.find(type) != std::string::npos || accept.find("*/*") != std::string::npos;
}

std::string hostPart(std::string hostAndPort) {
  if (!hostAndPort.empty() && hostAndPort.front() == '[') {
    auto end = hostAndPort.find(']');
    return end == std::string::npos ? hostAndPort : hostAndPort.substr(0, end + 1);
  }
  auto colon = hostAndPort.rfind(':');
  return colon == std::string::npos ? hostAndPort : hostAndPort.substr(0, colon);
}

// A caller-supplied X-Request-Id is kept (so traces join up across a proxy) when it is short
// and plain; anything else is replaced by a fresh random id, never logged as sent.
std::string correlationIdFor(const Poco::Net::HTTPRequest& head) {
  if (head.has("X-Request-Id")) {
    const std::string& id = head.get("X-Request-Id");
    const bool plain = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
    if (plain) return id;
  }
  return randomToken(8);
}

// The path of a request target, or nullopt when the target is not a valid URI.
std::optional<std::string> requestPath(const std::string& target) {
  try {
    return Poco::URI(target).getPath();
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

StreamableHttpEndpoint::StreamableHttpEndpoint(EndpointOptions options, protocol::McpRouter& router,
                                               connectors::Catalog& catalog,
                                               std::shared_ptr<protocol::ChangeBus> bus,
                                               ReadinessProbe readiness)
    : options_(std::move(options)),
      router_(router),
      catalog_(catalog),
      bus_(std::move(bus)),
      readiness_(std::move(readiness)),
      sessions_(options_.sessions) {}

StreamableHttpEndpoint::~StreamableHttpEndpoint() {
  shutdown();
}

void StreamableHttpEndpoint::beginShutdown() {
  sessions_.beginShutdown();
}

void StreamableHttpEndpoint::shutdown() {
  sessions_.closeAll();
}

bool StreamableHttpEndpoint::isControlRequest(const HttpRequest& request) const {
  // This runs on the reactor thread for every request, so it only looks at bytes: a wrong guess
  // costs priority, never correctness (the handler parses and validates properly).
  const std::string& uri = request.head.getURI();
  if (std::string_view(uri).substr(0, uri.find('?')) != options_.path) return true;  // health, metrics, 404s
  if (request.head.getMethod() != "POST") return true;  // GET opens or resumes a stream, DELETE ends one
  // A client's answer to our request (no "method"), or a notification such as
  // notifications/cancelled (no "id"): these release workers that wait on the client, so they
  // must never queue behind them.
  const std::string_view body = request.body;
  return body.find("\"method\"") == std::string_view::npos || body.find("\"id\"") == std::string_view::npos;
}

std::optional<std::string> StreamableHttpEndpoint::rebindingViolation(
    const Poco::Net::HTTPRequest& head) const {
  if (!options_.rebindingProtection) return std::nullopt;
  if (!head.has("Host")) return std::string("the Host header is required");
  const std::string host = lower(hostPart(head.getHost()));
  bool hostOk = false;
  for (const auto& allowed : options_.allowedHosts) hostOk = hostOk || lower(allowed) == host;
  if (!hostOk) return "Host header '" + head.getHost() + "' is not allowed (server.allowed_hosts)";
  if (head.has("Origin")) {
    const std::string& origin = head.get("Origin");
    for (const auto& allowed : options_.allowedOrigins) {
      if (allowed == origin) return std::nullopt;
    }
    try {
      Poco::URI uri(origin);
      std::string originHost = lower(uri.getHost());
      if (originHost.find(':') != std::string::npos) originHost = "[" + originHost + "]";
      for (const auto& allowed : options_.allowedHosts) {
        if (lower(allowed) == originHost) return std::nullopt;
      }
    } catch (const Poco::Exception&) {
      // fall through: an unparsable Origin is not allowed
    }
    return "Origin '" + origin + "' is not allowed (server.allowed_origins)";
  }
  return std::nullopt;
}

void StreamableHttpEndpoint::handle(HttpRequest&& request, const std::shared_ptr<ResponseChannel>& channel) {
  const auto started = std::chrono::steady_clock::now();
  std::string correlationId = correlationIdFor(request.head);
  Exchange ex{std::move(request), channel, std::move(correlationId), {}, 0, {}};
  const auto target = requestPath(ex.request.head.getURI());
  const std::string path = target.value_or("");
  if (!target) {
    ex.status = 400;
    channel->respond(400, {{"Content-Type", "text/plain"}}, "malformed request target\n");
  } else if (path == options_.path) {
    handleMcp(ex);
  } else if (path == "/healthz") {
    ex.status = 200;
    channel->respond(200, {{"Content-Type", "text/plain"}}, "ok\n");
  } else if (path == "/readyz") {
    auto reasons = readiness_ ? readiness_() : std::vector<std::string>{};
    ex.respondJson(reasons.empty() ? 200 : 503, Json{{"ready", reasons.empty()}, {"reasons", reasons}});
  } else if (options_.auth && options_.auth->enabled() &&
             std::ranges::count(options_.auth->resourceMetadataPaths(), path) > 0) {
    // RFC 9728: how a client finds the authorization server for this resource.
    ex.status = 200;
    channel->respond(200, {{"Content-Type", "application/json"}, {"Cache-Control", "max-age=3600"}},
                     options_.auth->resourceMetadataJson());
  } else if (path == "/metrics") {
    ex.status = 200;
    channel->respond(200, {{"Content-Type", "text/plain; version=0.0.4"}},
                     observe::Metrics::instance().render());
  } else {
    ex.status = 404;
    channel->respond(404, {{"Content-Type", "text/plain"}},
                     "not found; the MCP endpoint is " + options_.path + "\n");
  }
  if (options_.accessLog && path == options_.path) {
    // The principal is logged by subject only: never a token, password or key.
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started)
            .count();
    log::info("http", "request",
              {{"correlation_id", ex.correlationId},
               {"http_method", ex.request.head.getMethod()},
               {"mcp_method", ex.method},
               {"status", ex.status},
               {"peer", ex.request.peer},
               {"subject", ex.principal.subject},
               {"auth_method", ex.principal.authMethod},
               {"duration_us", micros}});
  }
}

void StreamableHttpEndpoint::handleMcp(Exchange& ex) {
  if (auto violation = rebindingViolation(ex.request.head)) {
    log::warn("http", "request refused by DNS-rebinding protection",
              {{"correlation_id", ex.correlationId}, {"reason", *violation}, {"peer", ex.request.peer}});
    ex.respondError(403, kServerError, "Forbidden: " + *violation);
    return;
  }
  if (!authenticate(ex)) return;
  const std::string& method = ex.request.head.getMethod();
  if (method == "POST") return handlePost(ex);
  if (method == "GET") return handleGet(ex);
  if (method == "DELETE") return handleDelete(ex);
  ex.respondError(405, kServerError, "Method not allowed: use POST, GET or DELETE", nullptr, nullptr,
                  {{"Allow", "GET, POST, DELETE"}});
}

void StreamableHttpEndpoint::handlePost(Exchange& ex) {
  const auto& head = ex.request.head;
  if (!acceptsType(head, "application/json") || !acceptsType(head, "text/event-stream")) {
    ex.respondError(
        406, kServerError,
        "Not Acceptable: the Accept header must list both application/json and text/event-stream");
    return;
  }
  if (head.getContentType().find("application/json") == std::string::npos) {
    ex.respondError(415, kServerError, "Unsupported Media Type: Content-Type must be application/json");
    return;
  }
  auto parsed = protocol::parseJson(ex.request.body, options_.limits);
  if (!parsed) {
    ex.respondError(400, parsed.error().error.code, parsed.error().error.message);
    return;
  }
  if (parsed->is_array()) {
    ex.respondError(400, errc::kInvalidRequest,
                    "Invalid Request: JSON-RPC batches are not supported; send one message per POST");
    return;
  }
  auto message = protocol::decodeMessage(*parsed);
  if (!message) {
    ex.respondError(400, message.error().error.code, message.error().error.message, message.error().id);
    return;
  }
  ex.method = message->method;
  if (!admitToolCall(ex, *message)) return;
  const Json& params = message->params;
  const bool claim = params.is_object() && params.contains("_meta") && params["_meta"].is_object() &&
                     params["_meta"].contains(protocol::kMetaProtocolVersion);
  const std::string headerVersion = head.get("MCP-Protocol-Version", "");
  const bool headerStateless = protocol::namesStatelessEra(headerVersion);
  if (message->kind == MessageKind::kRequest && message->method == "initialize" && !claim) {
    if (headerStateless) {
      ex.respondError(400, errc::kHeaderMismatch,
                      "initialize is not part of protocol revision " + headerVersion +
                          "; send requests with a per-request _meta envelope instead",
                      message->id);
      return;
    }
    return handleInitialize(ex, *message);
  }
  if (claim && message->kind != MessageKind::kResponse) return handleStateless(ex, *message);
  if (headerStateless && message->kind != MessageKind::kResponse) {
    ex.respondError(
        400, errc::kInvalidParams,
        "MCP-Protocol-Version " + headerVersion + " requires the per-request params._meta envelope",
        message->id, {{"envelope", {{"missing", {"_meta"}}}}});
    return;
  }
  handleSessionMessage(ex, *message);
}

void StreamableHttpEndpoint::handleInitialize(Exchange& ex, const Message& message) {
  if (ex.request.head.has("Mcp-Session-Id")) {
    ex.respondError(400, errc::kInvalidRequest,
                    "initialize must be sent without an Mcp-Session-Id header (it starts a new session)",
                    message.id);
    return;
  }
  const Json params = message.params.is_object() ? message.params : Json::object();
  const std::string version = protocol::McpRouter::negotiateVersion(params.value("protocolVersion", Json()));
  Json caps = params.value("capabilities", Json::object());
  if (!caps.is_object()) caps = Json::object();
  auto session = std::make_shared<protocol::Session>(randomToken(16), version, caps,
                                                     params.value("clientInfo", Json::object()));
  auto http = sessions_.create(session);
  http->bindOwner(ex.principal.authMethod + ":" + ex.principal.subject);
  subscribeSession(http);
  log::info("session", "session started",
            {{"correlation_id", ex.correlationId},
             {"session", session->id().substr(0, 8)},
             {"protocol_version", version},
             {"client", session->clientInfo().is_object() ? session->clientInfo().value("name", "") : ""}});
  ex.respondJson(200, protocol::makeResponse(message.id, router_.initializeResult(version)),
                 {{"Mcp-Session-Id", session->id()}});
}

void StreamableHttpEndpoint::subscribeSession(const std::shared_ptr<HttpSession>& session) {
  std::weak_ptr<HttpSession> weak = session;
  session->setBusToken(bus_->subscribe([weak](protocol::ChangeKind kind, std::string_view uri) {
    auto s = weak.lock();
    if (!s) return;
    auto stream = s->standalone();
    if (!stream) return;
    switch (kind) {
      case protocol::ChangeKind::kToolsListChanged:
        stream->send(protocol::makeNotification("notifications/tools/list_changed", nullptr));
        break;
      case protocol::ChangeKind::kPromptsListChanged:
        stream->send(protocol::makeNotification("notifications/prompts/list_changed", nullptr));
        break;
      case protocol::ChangeKind::kResourcesListChanged:
        stream->send(protocol::makeNotification("notifications/resources/list_changed", nullptr));
        break;
      case protocol::ChangeKind::kResourceUpdated:
        if (s->protocol().subscribed(uri)) {
          stream->send(protocol::makeNotification("notifications/resources/updated", {{"uri", uri}}));
        }
        break;
    }
  }));
}

std::shared_ptr<HttpSession> StreamableHttpEndpoint::requireSession(Exchange& ex) {
  const auto& head = ex.request.head;
  if (!head.has("Mcp-Session-Id")) {
    ex.respondError(400, kServerError,
                    "Bad Request: the Mcp-Session-Id header is required (send initialize first)");
    return nullptr;
  }
  auto session = sessions_.find(head.get("Mcp-Session-Id"));
  if (session && session->owner() != ex.principal.authMethod + ":" + ex.principal.subject) {
    // Someone else's session: answer exactly as for an unknown id, so ids cannot be probed.
    log::warn(
        "session", "session used by another principal",
        {{"correlation_id", ex.correlationId}, {"subject", ex.principal.subject}, {"peer", ex.request.peer}});
    session = nullptr;
  }
  if (!session) {
    ex.respondError(404, -32001, "Session not found: it expired or was deleted; initialize a new session");
    return nullptr;
  }
  if (head.has("MCP-Protocol-Version") && !protocol::isSessionVersion(head.get("MCP-Protocol-Version"))) {
    Json supported = Json::array();
    for (auto v : protocol::kSessionVersions) supported.push_back(v);
    ex.respondError(400, kServerError,
                    "Bad Request: unsupported MCP-Protocol-Version '" + head.get("MCP-Protocol-Version") +
                        "'; supported: 2025-11-25, 2025-06-18, 2025-03-26",
                    nullptr, {{"supported", supported}});
    return nullptr;
  }
  session->touch();
  return session;
}

void StreamableHttpEndpoint::handleSessionMessage(Exchange& ex, const Message& message) {
  auto session = requireSession(ex);
  if (!session) return;
  protocol::RequestScope scope;
  scope.era = protocol::Era::kSession;
  scope.correlationId = ex.correlationId;
  scope.caller = ex.principal;
  scope.requestBytes = ex.request.body.size();
  scope.session = session->protocolPtr();
  scope.protocolVersion = session->protocol().version();
  scope.clientCapabilities = session->protocol().clientCapabilities();
  if (message.kind == MessageKind::kNotification) {
    router_.notify(message, scope);
    ex.status = 202;
    ex.channel->respond(202, {{"X-Request-Id", ex.correlationId}}, "");
    return;
  }
  if (message.kind == MessageKind::kResponse) {
    session->protocol().deliverResponse(message);
    ex.status = 202;
    ex.channel->respond(202, {{"X-Request-Id", ex.correlationId}}, "");
    return;
  }
  if (message.params.is_object() && message.params.contains("_meta") && message.params["_meta"].is_object()) {
    scope.meta = message.params["_meta"];
  }
  scope.cancelled = session->protocol().beginRequest(message.id);
  PostResponder responder(ex.channel, session->newStream(),
                          {{"Mcp-Session-Id", session->protocol().id()}, {"X-Request-Id", ex.correlationId}},
                          options_.sseRetryMs);
  if (options_.resumableResponses) responder.beginStream();
  scope.sink = &responder;
  scope.closeStream = [&responder] { responder.detach(); };
  auto reply = router_.handle(message, scope);
  session->protocol().endRequest(message.id);
  ex.status = reply.httpStatus;
  if (scope.cancelled->load()) {
    log::info("http", "request cancelled by the client; no response sent",
              {{"correlation_id", ex.correlationId}, {"mcp_method", message.method}});
    responder.abandon();
    return;
  }
  responder.finish(reply.message, reply.httpStatus);
}

void StreamableHttpEndpoint::handleStateless(Exchange& ex, const Message& message) {
  auto failure = validateStatelessRequest(&ex.request.rawHeaders, message, [this](std::string_view tool) {
    return catalog_.toolInputSchema(tool);
  });
  if (failure) {
    ex.respondError(failure->httpStatus, failure->error.code, failure->error.message, message.id,
                    failure->error.data);
    return;
  }
  if (message.kind == MessageKind::kNotification) {
    ex.status = 202;
    ex.channel->respond(202, {{"X-Request-Id", ex.correlationId}}, "");
    return;
  }
  if (message.method == "subscriptions/listen") return handleListen(ex, message);
  const Json& meta = message.params["_meta"];
  protocol::RequestScope scope;
  scope.era = protocol::Era::kStateless;
  scope.correlationId = ex.correlationId;
  scope.caller = ex.principal;
  scope.requestBytes = ex.request.body.size();
  scope.protocolVersion = meta[std::string(protocol::kMetaProtocolVersion)].get<std::string>();
  scope.clientCapabilities = meta[std::string(protocol::kMetaClientCapabilities)];
  scope.meta = meta;
  scope.cancelled = std::make_shared<std::atomic<bool>>(false);
  PostResponder responder(ex.channel, nullptr, {{"X-Request-Id", ex.correlationId}}, options_.sseRetryMs);
  scope.sink = &responder;
  // A client that hangs up cancels its stateless request: nobody could receive the answer.
  ex.channel->onClose([flag = scope.cancelled] { flag->store(true); });
  auto reply = router_.handle(message, scope);
  ex.status = reply.httpStatus;
  responder.finish(reply.message, reply.httpStatus);
}

void StreamableHttpEndpoint::handleListen(Exchange& ex, const Message& message) {
  auto filter = router_.listenFilter(message.params);
  if (!filter) {
    ex.respondJson(200, protocol::makeErrorResponse(message.id, filter.error()));
    return;
  }
  ex.status = 200;
  ex.channel->startStream(200, sseHeaders({{"X-Request-Id", ex.correlationId}}));
  ex.channel->markLongLived();
  const Json subscriptionMeta = {{std::string(protocol::kMetaSubscriptionId), message.id}};
  Json ackParams = {{"notifications", *filter}, {"_meta", subscriptionMeta}};
  ex.channel->write(
      sseFrame({}, protocol::makeNotification("notifications/subscriptions/acknowledged", ackParams).dump()));
  auto channel = ex.channel;
  auto token = bus_->subscribe(
      [channel, f = *filter, subscriptionMeta](protocol::ChangeKind kind, std::string_view uri) {
        const char* method = nullptr;
        Json params = {{"_meta", subscriptionMeta}};
        switch (kind) {
          case protocol::ChangeKind::kToolsListChanged:
            if (f.value("toolsListChanged", false)) method = "notifications/tools/list_changed";
            break;
          case protocol::ChangeKind::kPromptsListChanged:
            if (f.value("promptsListChanged", false)) method = "notifications/prompts/list_changed";
            break;
          case protocol::ChangeKind::kResourcesListChanged:
            if (f.value("resourcesListChanged", false)) method = "notifications/resources/list_changed";
            break;
          case protocol::ChangeKind::kResourceUpdated:
            for (const auto& u : f.value("resourceSubscriptions", Json::array())) {
              if (u == uri) method = "notifications/resources/updated";
            }
            params["uri"] = uri;
            break;
        }
        if (method != nullptr)
          channel->write(sseFrame({}, protocol::makeNotification(method, params).dump()));
      });
  ++observe::Metrics::instance().openStreams;
  // The subscription lives exactly as long as the client keeps the stream open.
  ex.channel->onClose([token]() mutable {
    token.reset();
    --observe::Metrics::instance().openStreams;
  });
}

void StreamableHttpEndpoint::handleGet(Exchange& ex) {
  const auto& head = ex.request.head;
  if (!acceptsType(head, "text/event-stream")) {
    ex.respondError(406, kServerError, "Not Acceptable: GET needs Accept: text/event-stream");
    return;
  }
  auto session = requireSession(ex);
  if (!session) return;
  const HeaderList headers =
      sseHeaders({{"Mcp-Session-Id", session->protocol().id()}, {"X-Request-Id", ex.correlationId}});
  if (head.has("Last-Event-ID")) {
    const std::string last = head.get("Last-Event-ID");
    const auto sep = last.find("::");
    auto stream = sep == std::string::npos ? nullptr : session->findStream(last.substr(0, sep));
    std::size_t seq = 0;
    try {
      seq = stream ? std::stoul(last.substr(sep + 2)) : 0;
    } catch (const std::exception&) {
      stream = nullptr;
    }
    if (!stream) {
      ex.respondError(404, kServerError, "Unknown Last-Event-ID: the stream is gone; open a new GET stream");
      return;
    }
    ex.status = 200;
    ex.channel->startStream(200, headers);
    stream->attach(ex.channel, seq, false, options_.sseRetryMs);
    return;
  }
  if (auto existing = session->standalone(); existing && existing->live()) {
    ex.respondError(409, kServerError, "Conflict: this session already has an open GET stream");
    return;
  }
  auto stream = session->newStream();
  if (!session->setStandalone(stream)) {
    ex.respondError(409, kServerError, "Conflict: this session already has an open GET stream");
    return;
  }
  ex.status = 200;
  ex.channel->startStream(200, headers);
  ex.channel->markLongLived();
  stream->attach(ex.channel, 0, /*prime=*/true, options_.sseRetryMs, /*flushPrime=*/true);
  ++observe::Metrics::instance().openStreams;
  ex.channel->onClose([] { --observe::Metrics::instance().openStreams; });
}

void StreamableHttpEndpoint::handleDelete(Exchange& ex) {
  const auto& head = ex.request.head;
  if (!head.has("Mcp-Session-Id")) {
    ex.respondError(400, kServerError, "Bad Request: DELETE needs the Mcp-Session-Id header");
    return;
  }
  auto session = sessions_.find(head.get("Mcp-Session-Id"));
  if (!session || session->owner() != ex.principal.authMethod + ":" + ex.principal.subject ||
      !sessions_.remove(head.get("Mcp-Session-Id"))) {
    ex.respondError(404, -32001, "Session not found");
    return;
  }
  ex.status = 200;
  ex.channel->respond(200, {{"X-Request-Id", ex.correlationId}}, "");
}

}  // namespace mcphost::transport
