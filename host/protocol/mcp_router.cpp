#include "protocol/mcp_router.hpp"

#include <set>

#include "common/base64.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"

namespace mcphost::protocol {

namespace {

using connectors::InputRequired;
using connectors::LogLevel;
using connectors::Outcome;

RpcError invalidParams(std::string message, Json data = nullptr) {
  return RpcError{errc::kInvalidParams, std::move(message), std::move(data)};
}

// The client capability a server-to-client request needs.
std::string_view capabilityFor(std::string_view method) {
  if (method == "elicitation/create") return "elicitation";
  if (method == "sampling/createMessage") return "sampling";
  if (method == "roots/list") return "roots";
  return {};
}

const std::set<std::string, std::less<>> kKnownMethods = {"initialize",           "ping",
                                                          "logging/setLevel",     "tools/list",
                                                          "tools/call",           "resources/list",
                                                          "resources/read",       "resources/templates/list",
                                                          "resources/subscribe",  "resources/unsubscribe",
                                                          "prompts/list",         "prompts/get",
                                                          "completion/complete",  "server/discover",
                                                          "subscriptions/listen", "tasks/get",
                                                          "tasks/update",         "tasks/cancel"};

const std::set<std::string, std::less<>> kRemovedInStateless = {
    "initialize",   "ping",      "logging/setLevel", "resources/subscribe", "resources/unsubscribe",
    "tasks/result", "tasks/list"};

const std::set<std::string, std::less<>> kCacheable = {
    "server/discover",          "tools/list",    "prompts/list", "resources/list",
    "resources/templates/list", "resources/read"};

class CallContextImpl final : public connectors::CallContext {
 public:
  CallContextImpl(RequestScope& scope, const Json& inputResponses, const Json& state)
      : scope_(scope), inputResponses_(inputResponses), state_(state) {}

  void progress(double progress, std::optional<double> total, std::string_view message) override {
    auto token = scope_.meta.find("progressToken");
    if (token == scope_.meta.end() || scope_.sink == nullptr) return;
    Json params = {{"progressToken", *token}, {"progress", progress}};
    if (total) params["total"] = *total;
    if (!message.empty()) params["message"] = message;
    scope_.sink->send(makeNotification("notifications/progress", std::move(params)));
  }

  void log(LogLevel level, std::string_view logger, const Json& data) override {
    if (scope_.sink == nullptr) return;
    std::optional<LogLevel> threshold;
    if (scope_.era == Era::kStateless) {
      // 2026-07-28: logging is opt-in per request.
      auto it = scope_.meta.find(kMetaLogLevel);
      if (it == scope_.meta.end() || !it->is_string()) return;
      threshold = connectors::parseLogLevel(it->get<std::string>());
      if (!threshold) return;
    } else if (scope_.session) {
      threshold = scope_.session->logLevel();
    }
    if (threshold && level < *threshold) return;
    Json params = {{"level", connectors::logLevelName(level)}, {"data", data}};
    if (!logger.empty()) params["logger"] = logger;
    scope_.sink->send(makeNotification("notifications/message", std::move(params)));
  }

  [[nodiscard]] const Json* inputResponse(std::string_view key) const override {
    if (!inputResponses_.is_object()) return nullptr;
    auto it = inputResponses_.find(key);
    return it == inputResponses_.end() ? nullptr : &*it;
  }
  [[nodiscard]] bool hasInputResponses() const override { return inputResponses_.is_object(); }
  [[nodiscard]] const Json& inputResponses() const override { return inputResponses_; }
  [[nodiscard]] const Json& state() const override { return state_; }
  [[nodiscard]] bool clientSupports(std::string_view capability) const override {
    return scope_.clientCapabilities.is_object() && scope_.clientCapabilities.contains(capability);
  }
  [[nodiscard]] bool cancelled() const override { return scope_.cancelled && scope_.cancelled->load(); }
  [[nodiscard]] const connectors::Caller& caller() const override { return scope_.caller; }
  [[nodiscard]] std::string_view correlationId() const override { return scope_.correlationId; }
  void closeResponseStream() override {
    if (scope_.closeStream) scope_.closeStream();
  }

 private:
  RequestScope& scope_;
  const Json& inputResponses_;
  const Json& state_;
};

Outcome runGuarded(const std::function<Outcome(connectors::CallContext&)>& op, connectors::CallContext& ctx) {
  // A connector bug must become an error for this call, never take the host down.
  try {
    return op(ctx);
  } catch (const std::exception& e) {
    log::error("router", "connector threw an exception", {{"error", e.what()}});
    return RpcError{errc::kInternalError, std::string("connector failure: ") + e.what(), nullptr};
  }
}

}  // namespace

McpRouter::McpRouter(connectors::Catalog& catalog, ServerIdentity identity, RouterOptions options)
    : catalog_(catalog),
      identity_(std::move(identity)),
      options_(options),
      stateCodec_(RequestStateCodec::withRandomKey()) {}

std::string McpRouter::negotiateVersion(const Json& requested) {
  if (requested.is_string() && isSessionVersion(requested.get<std::string>()))
    return requested.get<std::string>();
  return std::string(kSessionVersions.front());
}

Json McpRouter::capabilities(Era era) const {
  Json caps = {{"tools", {{"listChanged", true}}},
               {"resources", {{"subscribe", true}, {"listChanged", true}}},
               {"prompts", {{"listChanged", true}}},
               {"logging", Json::object()},
               {"completions", Json::object()}};
  // Tasks exist only on the stateless revision, where each request opts in through _meta.
  if (era == Era::kStateless) caps["extensions"] = {{std::string(kTasksExtension), Json::object()}};
  return caps;
}

Json McpRouter::initializeResult(const std::string& version) const {
  Json result = {{"protocolVersion", version},
                 {"capabilities", capabilities(Era::kSession)},
                 {"serverInfo", {{"name", identity_.name}, {"version", identity_.version}}}};
  if (!identity_.instructions.empty()) result["instructions"] = identity_.instructions;
  return result;
}

int McpRouter::statusForError(int code) {
  switch (code) {
    case errc::kMethodNotFound:
      return 404;
    case errc::kHeaderMismatch:
    case errc::kMissingRequiredCapability:
    case errc::kUnsupportedProtocolVersion:
      return 400;
    case guard::kForbidden:
      return 403;
    case kAuditUnavailable:
      return 503;
    default:
      return 200;
  }
}

Json McpRouter::statelessResult(std::string_view method, Json result) const {
  if (!result.is_object()) result = Json::object();
  if (!result.contains("resultType")) result["resultType"] = "complete";
  if (kCacheable.count(method) != 0 && result["resultType"] == "complete") {
    // Lists are filtered per caller, so nothing may be shared between callers.
    if (!result.contains("ttlMs")) result["ttlMs"] = 0;
    if (!result.contains("cacheScope")) result["cacheScope"] = "private";
  }
  if (method == "tools/call" && !result.contains("content")) result["content"] = Json::array();
  result["_meta"][std::string(kMetaServerInfo)] = {{"name", identity_.name}, {"version", identity_.version}};
  return result;
}

Reply McpRouter::handle(const Message& request, RequestScope& scope) {
  const auto started = std::chrono::steady_clock::now();
  auto refused = auditGate();
  auto outcome =
      refused ? Expected<Json, RpcError>(unexpected(std::move(*refused))) : dispatch(request, scope);
  Reply reply;
  std::string status = "ok";
  if (outcome) {
    Json result = std::move(outcome.value());
    if (scope.era == Era::kStateless) result = statelessResult(request.method, std::move(result));
    reply.message = makeResponse(request.id, std::move(result));
  } else {
    reply.message = makeErrorResponse(request.id, outcome.error());
    if (scope.era == Era::kStateless) reply.httpStatus = statusForError(outcome.error().code);
    // Only codes the host itself uses become label values; a connector's arbitrary codes must
    // not create unbounded metric series.
    const int code = outcome.error().code;
    status = code <= -32000 && code >= -32768 ? std::to_string(code) : "error";
  }
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  // The record is written before the response leaves (recordAudit may turn it into a refusal).
  if (data_.audit) recordAudit(request, scope, reply, elapsed);
  observe::Metrics::instance().observeRequest(kKnownMethods.count(request.method) != 0
                                                  ? std::string_view(request.method)
                                                  : std::string_view("unknown"),
                                              status, elapsed);
  return reply;
}

void McpRouter::notify(const Message& notification, RequestScope& scope) {
  if (!scope.session) return;
  if (notification.method == "notifications/initialized") {
    scope.session->markInitialized();
  } else if (notification.method == "notifications/cancelled") {
    if (notification.params.is_object() && notification.params.contains("requestId")) {
      scope.session->cancelRequest(notification.params["requestId"]);
    }
  }
  // Other notifications (roots/list_changed, progress) need no action from the host today.
}

Expected<Json, RpcError> McpRouter::dispatch(const Message& request, RequestScope& scope) {
  const std::string& m = request.method;
  if (!request.params.is_null() && !request.params.is_object()) {
    return unexpected(invalidParams("params must be an object"));
  }
  const Json params = request.params.is_object() ? request.params : Json::object();
  const bool stateless = scope.era == Era::kStateless;
  if (stateless && kRemovedInStateless.count(m) != 0) {
    return unexpected(RpcError{
        errc::kMethodNotFound,
        "Method not found: " + m + " does not exist in protocol revision " + scope.protocolVersion, nullptr});
  }
  if (m == "ping") return Json::object();
  if (m == "initialize") {
    return unexpected(RpcError{errc::kInvalidRequest, "this MCP session is already initialized", nullptr});
  }
  if (m == "server/discover" && stateless) {
    Json versions = Json::array();
    for (auto v : kStatelessVersions) versions.push_back(v);
    Json result = {{"supportedVersions", versions},
                   {"capabilities", capabilities(Era::kStateless)},
                   {"serverInfo", {{"name", identity_.name}, {"version", identity_.version}}}};
    if (!identity_.instructions.empty()) result["instructions"] = identity_.instructions;
    return result;
  }
  if (m == "logging/setLevel") return setLogLevel(params, scope);
  if (m == "tools/list") return paginate(visibleItems(ListKind::kTools, scope), "tools", params);
  if (m == "tools/call") return callTool(params, scope);
  if (m == "resources/list") return paginate(visibleItems(ListKind::kResources, scope), "resources", params);
  if (m == "resources/templates/list")
    return paginate(visibleItems(ListKind::kResourceTemplates, scope), "resourceTemplates", params);
  if (m == "resources/read") return readResource(params, scope);
  if (m == "resources/subscribe") return subscription(params, scope, true);
  if (m == "resources/unsubscribe") return subscription(params, scope, false);
  if (m == "prompts/list") return paginate(visibleItems(ListKind::kPrompts, scope), "prompts", params);
  if (m == "prompts/get") return getPrompt(params, scope);
  if (m == "completion/complete") return complete(params, scope);
  if (stateless && (m == "tasks/get" || m == "tasks/update" || m == "tasks/cancel"))
    return taskMethod(m, params, scope);
  return unexpected(RpcError{errc::kMethodNotFound, "Method not found: " + m, nullptr});
}

Expected<Json, RpcError> McpRouter::paginate(const Json& items, const char* key, const Json& params) const {
  std::size_t offset = 0;
  if (auto cursor = params.find("cursor"); cursor != params.end() && !cursor->is_null()) {
    auto decoded = cursor->is_string() ? base64UrlDecode(cursor->get<std::string>()) : std::nullopt;
    if (!decoded || decoded->empty() || decoded->find_first_not_of("0123456789") != std::string::npos ||
        decoded->size() > 9) {
      return unexpected(invalidParams("Invalid cursor: pass the nextCursor of an earlier page unchanged"));
    }
    offset = std::stoul(*decoded);
  }
  Json page = Json::array();
  for (std::size_t i = offset; i < items.size() && page.size() < options_.pageSize; ++i)
    page.push_back(items[i]);
  Json result = {{key, std::move(page)}};
  if (offset + options_.pageSize < items.size()) {
    result["nextCursor"] = base64UrlEncode(std::to_string(offset + options_.pageSize));
  }
  return result;
}

Expected<Json, RpcError> McpRouter::setLogLevel(const Json& params, RequestScope& scope) {
  auto level = params.find("level");
  if (level == params.end() || !level->is_string())
    return unexpected(invalidParams("params.level is required"));
  auto parsed = connectors::parseLogLevel(level->get<std::string>());
  if (!parsed) {
    return unexpected(
        invalidParams("unknown log level '" + level->get<std::string>() +
                      "'; use debug, info, notice, warning, error, critical, alert or emergency"));
  }
  if (scope.session) scope.session->setLogLevel(*parsed);
  return Json::object();
}

Expected<Json, RpcError> McpRouter::runWithInput(const Operation& op, const std::string& binding,
                                                 const Json& params, RequestScope& scope) {
  Json inputResponses;
  Json state;
  const bool stateless = scope.era == Era::kStateless;
  if (stateless) {
    if (auto token = params.find("requestState"); token != params.end() && !token->is_null()) {
      auto opened = token->is_string() ? stateCodec_.open(token->get<std::string>(), binding)
                                       : Expected<Json, std::string>(unexpected(std::string("not a string")));
      if (!opened) {
        return unexpected(
            invalidParams("Invalid requestState: " + opened.error(), {{"reason", "invalid_request_state"}}));
      }
      state = std::move(opened.value());
    }
    if (auto responses = params.find("inputResponses"); responses != params.end() && responses->is_object()) {
      inputResponses = *responses;
    }
  }
  Operation current = op;
  bool deferredInline = false;
  for (int round = 0; round <= options_.maxInputRounds; ++round) {
    CallContextImpl ctx(scope, inputResponses, state);
    Outcome outcome = runGuarded(current, ctx);
    if (auto* result = outcome.get_if<Json>()) return std::move(*result);
    if (auto* error = outcome.get_if<RpcError>()) return unexpected(std::move(*error));
    if (auto* deferred = outcome.get_if<connectors::Deferred>()) {
      const bool tasksDeclared = stateless && scope.clientCapabilities.contains("extensions") &&
                                 scope.clientCapabilities["extensions"].is_object() &&
                                 scope.clientCapabilities["extensions"].contains(kTasksExtension);
      if (tasksDeclared)
        return tasks_.start(std::move(deferred->job), scope.clientCapabilities, scope.caller);
      if (stateless && deferred->taskRequired) {
        return unexpected(RpcError{
            errc::kMissingRequiredCapability,
            "this tool runs only as a task: declare the " + std::string(kTasksExtension) +
                " extension in _meta clientCapabilities",
            {{"requiredCapabilities", {{"extensions", {{std::string(kTasksExtension), Json::object()}}}}}}});
      }
      // No task support on this call: run the work now, inside the request.
      if (deferredInline) {
        return unexpected(RpcError{errc::kInternalError, "the connector deferred its work twice", nullptr});
      }
      deferredInline = true;
      current = std::move(deferred->job);
      --round;
      continue;
    }
    auto& ask = *outcome.get_if<InputRequired>();
    if (stateless) {
      Json requests = Json::object();
      Json missing = Json::object();
      for (auto it = ask.requests.begin(); it != ask.requests.end(); ++it) {
        const auto cap = capabilityFor(it.value().value("method", ""));
        if (!cap.empty() && !ctx.clientSupports(cap)) {
          missing[std::string(cap)] = Json::object();
        } else {
          requests[it.key()] = it.value();
        }
      }
      if (requests.empty()) {
        return unexpected(RpcError{errc::kMissingRequiredCapability,
                                   "this request needs client capabilities the request did not declare",
                                   {{"requiredCapabilities", missing}}});
      }
      Json result = {{"resultType", "input_required"}, {"inputRequests", std::move(requests)}};
      if (!ask.state.is_null()) result["requestState"] = stateCodec_.seal(ask.state, binding);
      return result;
    }
    // Session era: ask the client for real, then run the handler again with the answers.
    if (!scope.session || scope.sink == nullptr) {
      return unexpected(
          RpcError{errc::kInternalError, "no channel to the client for an input request", nullptr});
    }
    Json answers = Json::object();
    for (auto it = ask.requests.begin(); it != ask.requests.end(); ++it) {
      const std::string method = it.value().value("method", "");
      const auto cap = capabilityFor(method);
      if (!cap.empty() && !ctx.clientSupports(cap)) {
        return unexpected(RpcError{errc::kInvalidRequest,
                                   "this call needs the client capability '" + std::string(cap) +
                                       "', which the client did not declare in initialize",
                                   nullptr});
      }
      auto answer = scope.session->callClient(method, it.value().value("params", Json::object()), *scope.sink,
                                              options_.clientRequestTimeout, scope.cancelled.get());
      if (!answer) {
        return unexpected(
            RpcError{answer.error().code, method + " failed: " + answer.error().message, nullptr});
      }
      answers[it.key()] = std::move(answer.value());
    }
    inputResponses = std::move(answers);
    state = std::move(ask.state);
  }
  return unexpected(RpcError{
      errc::kInternalError,
      "the connector kept asking for input after " + std::to_string(options_.maxInputRounds) + " rounds",
      nullptr});
}

Expected<Json, RpcError> McpRouter::callTool(const Json& params, RequestScope& scope) {
  auto name = params.find("name");
  if (name == params.end() || !name->is_string())
    return unexpected(invalidParams("params.name must be a string"));
  auto args = params.find("arguments");
  if (args != params.end() && !args->is_null() && !args->is_object()) {
    return unexpected(invalidParams("params.arguments must be an object"));
  }
  const std::string toolName = name->get<std::string>();
  auto target = catalog_.findTool(toolName);
  if (!target) {
    // A tool of a connector that is down is not listed; say why rather than "unknown".
    if (auto why = catalog_.unavailableReason(toolName)) {
      return unexpected(invalidParams("Unknown tool: " + toolName + " (" + *why + ")", {{"name", toolName}}));
    }
    return unexpected(invalidParams("Unknown tool: " + toolName, {{"name", toolName}}));
  }
  const Json arguments = args != params.end() && args->is_object() ? *args : Json::object();
  scope.audit.connector = target->connectorId;
  scope.audit.target = toolName;
  if (auto refused = checkAccess(policy::Action::kCallTool, "tool", *target, toolName, &arguments, scope))
    return unexpected(std::move(*refused));
  if (auto invalid = refuseArguments(toolName, arguments, scope)) return std::move(*invalid);
  auto result = runWithInput(
      [&](connectors::CallContext& ctx) {
        return target->connector->callTool(target->localName, arguments, ctx);
      },
      "tools/call:" + toolName, params, scope);
  if (result && result->is_object() && !result->contains("content") &&
      result->value("resultType", "complete") == "complete") {
    (*result)["content"] = Json::array();
  }
  if (result && result->is_object() && result->value("resultType", "complete") == "complete") {
    if (auto blocked = protectResult("tool", *target, toolName, *result, scope)) return unexpected(*blocked);
  }
  return result;
}

Expected<Json, RpcError> McpRouter::readResource(const Json& params, RequestScope& scope) {
  auto uri = params.find("uri");
  if (uri == params.end() || !uri->is_string())
    return unexpected(invalidParams("params.uri must be a string"));
  const std::string u = uri->get<std::string>();
  const int notFound = scope.era == Era::kStateless ? errc::kInvalidParams : errc::kResourceNotFound;
  auto target = catalog_.findResource(u);
  if (!target) return unexpected(RpcError{notFound, "Resource not found: " + u, {{"uri", u}}});
  scope.audit.connector = target->connectorId;
  scope.audit.target = u;
  if (auto refused = checkAccess(policy::Action::kReadResource, "resource", *target, u, nullptr, scope))
    return unexpected(std::move(*refused));
  auto result =
      runWithInput([&](connectors::CallContext& ctx) { return target->connector->readResource(u, ctx); },
                   "resources/read:" + u, params, scope);
  if (!result && result.error().code == errc::kResourceNotFound) {
    return unexpected(RpcError{notFound, result.error().message, {{"uri", u}}});
  }
  if (result && result->value("resultType", "complete") == "complete") {
    if (auto blocked = protectResult("resource", *target, u, *result, scope)) return unexpected(*blocked);
  }
  return result;
}

Expected<Json, RpcError> McpRouter::getPrompt(const Json& params, RequestScope& scope) {
  auto name = params.find("name");
  if (name == params.end() || !name->is_string())
    return unexpected(invalidParams("params.name must be a string"));
  auto args = params.find("arguments");
  if (args != params.end() && !args->is_null() && !args->is_object()) {
    return unexpected(invalidParams("params.arguments must be an object of strings"));
  }
  const std::string promptName = name->get<std::string>();
  auto target = catalog_.findPrompt(promptName);
  if (!target) return unexpected(invalidParams("Unknown prompt: " + promptName, {{"name", promptName}}));
  const Json arguments = args != params.end() && args->is_object() ? *args : Json::object();
  scope.audit.connector = target->connectorId;
  scope.audit.target = promptName;
  if (auto refused =
          checkAccess(policy::Action::kGetPrompt, "prompt", *target, promptName, &arguments, scope))
    return unexpected(std::move(*refused));
  auto result = runWithInput(
      [&](connectors::CallContext& ctx) {
        return target->connector->getPrompt(target->localName, arguments, ctx);
      },
      "prompts/get:" + promptName, params, scope);
  if (result && result->is_object() && result->value("resultType", "complete") == "complete") {
    if (auto blocked = protectResult("prompt", *target, promptName, *result, scope))
      return unexpected(*blocked);
  }
  return result;
}

Expected<Json, RpcError> McpRouter::complete(const Json& params, RequestScope& scope) {
  auto ref = params.find("ref");
  auto argument = params.find("argument");
  if (ref == params.end() || !ref->is_object() || argument == params.end() || !argument->is_object()) {
    return unexpected(invalidParams("params.ref and params.argument must be objects"));
  }
  std::optional<connectors::Catalog::Target> target;
  Json localRef = *ref;
  const std::string type = ref->value("type", "");
  const auto name = ref->find("name");
  const auto uri = ref->find("uri");
  if (type == "ref/prompt" && name != ref->end() && name->is_string()) {
    target = catalog_.findPrompt(name->get<std::string>());
    if (target) localRef["name"] = target->localName;
  } else if (type == "ref/resource" && uri != ref->end() && uri->is_string()) {
    target = catalog_.findTemplate(uri->get<std::string>());
  } else {
    return unexpected(
        invalidParams("params.ref.type must be ref/prompt (with name) or ref/resource (with uri)"));
  }
  if (!target) return Json{{"completion", {{"values", Json::array()}, {"total", 0}, {"hasMore", false}}}};
  const std::string refName = type == "ref/prompt" ? name->get<std::string>() : uri->get<std::string>();
  if (auto refused = checkAccess(policy::Action::kComplete, type == "ref/prompt" ? "prompt" : "resource",
                                 *target, refName, nullptr, scope))
    return unexpected(std::move(*refused));
  const Json context = params.value("context", Json::object());
  Json noInput;
  CallContextImpl ctx(scope, noInput, noInput);
  Outcome outcome = runGuarded(
      [&](connectors::CallContext& c) {
        return target->connector->complete(localRef, *argument, context, c);
      },
      ctx);
  if (auto* result = outcome.get_if<Json>()) return std::move(*result);
  if (auto* error = outcome.get_if<RpcError>()) return unexpected(std::move(*error));
  return unexpected(
      RpcError{errc::kInternalError, "completion can neither ask for input nor defer", nullptr});
}

Expected<Json, RpcError> McpRouter::subscription(const Json& params, RequestScope& scope, bool subscribe) {
  auto uri = params.find("uri");
  if (uri == params.end() || !uri->is_string())
    return unexpected(invalidParams("params.uri must be a string"));
  const std::string u = uri->get<std::string>();
  auto target = catalog_.findResource(u);
  if (!target) return unexpected(RpcError{errc::kResourceNotFound, "Resource not found: " + u, {{"uri", u}}});
  if (auto refused = checkAccess(policy::Action::kReadResource, "resource", *target, u, nullptr, scope))
    return unexpected(std::move(*refused));
  if (scope.session && subscribe && !scope.session->subscribe(u)) {
    return unexpected(invalidParams("too many resource subscriptions in this session (limit " +
                                    std::to_string(protocol::Session::kMaxSubscriptions) + ")"));
  }
  Outcome outcome = subscribe ? target->connector->subscribe(u) : target->connector->unsubscribe(u);
  if (auto* error = outcome.get_if<RpcError>()) {
    if (scope.session && subscribe) scope.session->unsubscribe(u);
    return unexpected(std::move(*error));
  }
  if (scope.session) {
    if (subscribe) {
    } else {
      scope.session->unsubscribe(u);
    }
  }
  return Json::object();
}

Expected<Json, RpcError> McpRouter::taskMethod(const std::string& method, const Json& params,
                                               RequestScope& scope) {
  // Capability first: a client that did not opt in learns that, not whether the id exists.
  const Json& caps = scope.clientCapabilities;
  if (!caps.contains("extensions") || !caps["extensions"].is_object() ||
      !caps["extensions"].contains(kTasksExtension)) {
    return unexpected(RpcError{
        errc::kMissingRequiredCapability,
        method + " needs the " + std::string(kTasksExtension) + " extension",
        {{"requiredCapabilities", {{"extensions", {{std::string(kTasksExtension), Json::object()}}}}}}});
  }
  auto id = params.find("taskId");
  if (id == params.end() || !id->is_string())
    return unexpected(invalidParams("params.taskId must be a string"));
  const std::string taskId = id->get<std::string>();
  if (auto foreign = tasks_.checkOwner(taskId, scope.caller)) return unexpected(std::move(*foreign));
  if (method == "tasks/get") return tasks_.get(taskId);
  if (method == "tasks/cancel") return tasks_.cancel(taskId);
  return tasks_.update(taskId, params.value("inputResponses", Json::object()));
}

Expected<Json, RpcError> McpRouter::listenFilter(const Json& params) const {
  auto notifications = params.find("notifications");
  if (notifications == params.end() || !notifications->is_object()) {
    return unexpected(invalidParams("params.notifications must be an object"));
  }
  Json filter = Json::object();
  for (const char* flag : {"toolsListChanged", "promptsListChanged", "resourcesListChanged"}) {
    if (auto it = notifications->find(flag); it != notifications->end()) {
      if (!it->is_boolean())
        return unexpected(invalidParams(std::string("notifications.") + flag + " must be a boolean"));
      if (it->get<bool>()) filter[flag] = true;
    }
  }
  if (auto it = notifications->find("resourceSubscriptions"); it != notifications->end()) {
    if (!it->is_array())
      return unexpected(invalidParams("notifications.resourceSubscriptions must be an array"));
    Json uris = Json::array();
    for (const auto& u : *it) {
      if (!u.is_string()) return unexpected(invalidParams("resourceSubscriptions entries must be URIs"));
      uris.push_back(u);
    }
    filter["resourceSubscriptions"] = std::move(uris);
  }
  return filter;
}

}  // namespace mcphost::protocol
