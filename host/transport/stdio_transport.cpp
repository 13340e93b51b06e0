#include "transport/stdio_transport.hpp"

#include <string>

#include "common/crypto.hpp"
#include "common/thread_pool.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "transport/stateless_headers.hpp"

namespace mcphost::transport {

using protocol::Json;
using protocol::MessageKind;

class StdioTransport::Writer final : public protocol::MessageSink {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}
  bool send(const Json& message) override {
    const std::string line = message.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mutex_);
    out_ << line;
    out_.flush();
    return static_cast<bool>(out_);
  }

 private:
  std::mutex mutex_;
  std::ostream& out_;
};

StdioTransport::StdioTransport(protocol::McpRouter& router, std::shared_ptr<protocol::ChangeBus> bus,
                               protocol::ParseLimits limits, std::size_t workerThreads)
    : router_(router), bus_(std::move(bus)), limits_(limits), workerThreads_(workerThreads) {}

int StdioTransport::run(std::istream& in, std::ostream& out) {
  Writer writer(out);
  auto token = bus_->subscribe([this, &writer](protocol::ChangeKind kind, std::string_view uri) {
    std::shared_ptr<protocol::Session> session;
    {
      std::lock_guard lock(sessionMutex_);
      session = session_;
    }
    if (!session) return;
    switch (kind) {
      case protocol::ChangeKind::kToolsListChanged:
        writer.send(protocol::makeNotification("notifications/tools/list_changed", nullptr));
        break;
      case protocol::ChangeKind::kPromptsListChanged:
        writer.send(protocol::makeNotification("notifications/prompts/list_changed", nullptr));
        break;
      case protocol::ChangeKind::kResourcesListChanged:
        writer.send(protocol::makeNotification("notifications/resources/list_changed", nullptr));
        break;
      case protocol::ChangeKind::kResourceUpdated:
        if (session->subscribed(uri)) {
          writer.send(protocol::makeNotification("notifications/resources/updated", {{"uri", uri}}));
        }
        break;
    }
  });
  {
    ThreadPool pool(workerThreads_, 1024);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      auto parsed = protocol::parseJson(line, limits_);
      // Responses and notifications (cancellation) must be handled at once: a worker may be
      // waiting for them.
      if (parsed && parsed->is_object() && (!parsed->contains("method") || !parsed->contains("id"))) {
        handleLine(line, writer);
        continue;
      }
      if (!pool.submit([this, line, &writer] { handleLine(line, writer); })) {
        Json id = parsed && parsed->is_object() ? parsed->value("id", Json()) : Json();
        if (!id.is_null()) {
          writer.send(protocol::makeErrorResponse(
              id, {protocol::errc::kInternalError, "server overloaded: too many requests in flight; retry",
                   nullptr}));
        }
      }
    }
    std::shared_ptr<protocol::Session> session;
    {
      std::lock_guard lock(sessionMutex_);
      session = session_;
    }
    if (session) session->abandonClientCalls();
  }  // joins the workers
  return 0;
}

void StdioTransport::setIdentity(auth::Principal principal, std::shared_ptr<guard::CallLimits> limits,
                                 const connectors::Catalog* catalog) {
  principal_ = std::move(principal);
  rateLimits_ = std::move(limits);
  catalog_ = catalog;
}

std::optional<protocol::RpcError> StdioTransport::rateLimited(const protocol::Message& message) {
  if (!rateLimits_ || message.kind != MessageKind::kRequest) return std::nullopt;
  auto refusal = rateLimits_->admitRequest(principal_.authMethod + ":" + principal_.subject);
  if (!refusal && catalog_ != nullptr && message.method == "tools/call" && message.params.is_object() &&
      message.params.contains("name") && message.params["name"].is_string()) {
    const std::string name = message.params["name"].get<std::string>();
    if (auto target = catalog_->findTool(name); target && router_.mayCallTool(principal_, name))
      refusal = rateLimits_->admitToolCall(target->connectorId, name);
  }
  if (!refusal) return std::nullopt;
  observe::Metrics::instance().countRateLimited();
  return protocol::RpcError{
      guard::kRateLimited, refusal->message, {{"retryAfterSeconds", refusal->retryAfter.count()}}};
}

void StdioTransport::handleLine(const std::string& line, Writer& writer) {
  auto parsed = protocol::parseJson(line, limits_);
  if (!parsed) {
    writer.send(protocol::makeErrorResponse(nullptr, parsed.error().error));
    return;
  }
  if (parsed->is_array()) {
    writer.send(protocol::makeErrorResponse(
        nullptr, {protocol::errc::kInvalidRequest, "JSON-RPC batches are not supported", nullptr}));
    return;
  }
  auto message = protocol::decodeMessage(*parsed);
  if (!message) {
    writer.send(protocol::makeErrorResponse(message.error().id, message.error().error));
    return;
  }
  const Json& params = message->params;
  const bool claim = params.is_object() && params.contains("_meta") && params["_meta"].is_object() &&
                     params["_meta"].contains(protocol::kMetaProtocolVersion);
  protocol::RequestScope scope;
  scope.sink = &writer;
  scope.caller = principal_;
  scope.requestBytes = line.size();
  // stdio has no X-Request-Id; the audit record and the connector still get a correlation id.
  scope.correlationId = randomToken(8);
  if (auto limited = rateLimited(*message)) {
    writer.send(protocol::makeErrorResponse(message->id, *limited));
    return;
  }
  if (params.is_object() && params.contains("_meta") && params["_meta"].is_object())
    scope.meta = params["_meta"];

  if (claim && message->kind == MessageKind::kRequest) {
    if (auto failure = validateStatelessRequest(nullptr, *message, nullptr)) {
      writer.send(protocol::makeErrorResponse(message->id, failure->error));
      return;
    }
    scope.era = protocol::Era::kStateless;
    scope.protocolVersion = scope.meta[std::string(protocol::kMetaProtocolVersion)].get<std::string>();
    scope.clientCapabilities = scope.meta[std::string(protocol::kMetaClientCapabilities)];
    scope.cancelled = std::make_shared<std::atomic<bool>>(false);
    writer.send(router_.handle(*message, scope).message);
    return;
  }

  std::shared_ptr<protocol::Session> session;
  if (message->kind == MessageKind::kRequest && message->method == "initialize") {
    const Json p = params.is_object() ? params : Json::object();
    const std::string version = protocol::McpRouter::negotiateVersion(p.value("protocolVersion", Json()));
    Json caps = p.value("capabilities", Json::object());
    session = std::make_shared<protocol::Session>(randomToken(16), version,
                                                  caps.is_object() ? caps : Json::object(),
                                                  p.value("clientInfo", Json::object()));
    std::shared_ptr<protocol::Session> previous;
    {
      std::lock_guard lock(sessionMutex_);
      previous = std::exchange(session_, session);
    }
    if (previous) previous->abandonClientCalls();  // a re-initialize ends the old session
    log::info("stdio", "session started", {{"protocol_version", version}});
    writer.send(protocol::makeResponse(message->id, router_.initializeResult(version)));
    return;
  }
  {
    std::lock_guard lock(sessionMutex_);
    session = session_;
  }
  if (message->kind == MessageKind::kResponse) {
    if (session) session->deliverResponse(*message);
    return;
  }
  if (!session) {
    if (message->kind == MessageKind::kRequest && message->method != "ping") {
      writer.send(protocol::makeErrorResponse(
          message->id,
          {protocol::errc::kInvalidRequest, "send initialize before " + message->method, nullptr}));
    } else if (message->kind == MessageKind::kRequest) {
      writer.send(protocol::makeResponse(message->id, Json::object()));
    }
    return;
  }
  scope.era = protocol::Era::kSession;
  scope.session = session;
  scope.protocolVersion = session->version();
  scope.clientCapabilities = session->clientCapabilities();
  if (message->kind == MessageKind::kNotification) {
    router_.notify(*message, scope);
    return;
  }
  scope.cancelled = session->beginRequest(message->id);
  auto reply = router_.handle(*message, scope);
  session->endRequest(message->id);
  if (scope.cancelled->load()) return;  // cancelled by the client: no response, as MCP asks
  writer.send(reply.message);
}

}  // namespace mcphost::transport
