#include "connectors/worker/worker_connector.hpp"

#include <algorithm>
#include <set>

#include "common/crypto.hpp"
#include "connectors/worker/worker_slot.hpp"
#include "observe/log.hpp"

namespace mcphost::connectors {

namespace {

using namespace std::chrono_literals;

std::string seconds(std::chrono::milliseconds ms) {
  const auto s = ms.count() / 1000.0;
  std::string text = std::to_string(s);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + "s";
}

std::int64_t unixMillis(Clock::time_point deadline) {
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return (now + remaining).count();
}

const std::set<std::string, std::less<>> kInputMethods = {"elicitation/create", "sampling/createMessage",
                                                          "roots/list"};

// The canonical status names, for error data an operator can grep.
std::string statusName(int status) {
  switch (status) {
    case 1:
      return "CANCELLED";
    case 3:
      return "INVALID_ARGUMENT";
    case 4:
      return "DEADLINE_EXCEEDED";
    case 5:
      return "NOT_FOUND";
    case 7:
      return "PERMISSION_DENIED";
    case 8:
      return "RESOURCE_EXHAUSTED";
    case 9:
      return "FAILED_PRECONDITION";
    case 12:
      return "UNIMPLEMENTED";
    case 13:
      return "INTERNAL";
    case 14:
      return "UNAVAILABLE";
    case 16:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

std::shared_ptr<WorkerConnector> WorkerConnector::create(WorkerSpec spec) {
  std::shared_ptr<WorkerConnector> self(new WorkerConnector(std::move(spec)));  // private constructor
  self->supervisor_ = std::thread([raw = self.get()] { raw->superviseLoop(); });
  return self;
}

WorkerConnector::WorkerConnector(WorkerSpec spec) : spec_(std::move(spec)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, spec_.policy.workers); ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->index = i;
  }
}

WorkerConnector::~WorkerConnector() {
  shutdown();
}

void WorkerConnector::attach(ConnectorEvents* events) {
  std::lock_guard lock(eventsMutex_);  // waits for a publish in progress
  events_ = events;
}

void WorkerConnector::shutdown() {
  std::vector<std::shared_ptr<WorkerProcess>> processes;
  {
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& slot : slots_) {
      if (slot->process) {
        slot->state = Slot::State::kRetiring;
        stopGracefully(*slot);
      }
    }
    changed_.notify_all();
    // Graceful: let the workers destroy their instances and exit on their own.
    changed_.wait_for(lock, spec_.policy.drainTimeout, [this] {
      return std::all_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->process == nullptr; });
    });
    for (auto& slot : slots_) {
      for (auto& [id, call] : slot->pending) {
        call->failure = "connector '" + spec_.connectorId + "' is shutting down";
        call->done = true;
        call->cv.notify_all();
      }
      slot->pending.clear();
      if (slot->process) processes.push_back(std::move(slot->process));
    }
    for (auto& p : graveyard_) processes.push_back(std::move(p));
    graveyard_.clear();
  }
  if (supervisor_.joinable()) supervisor_.join();
  for (auto& p : processes) p->kill("the host is shutting down");
  processes.clear();  // joins the I/O threads
}

SupervisorStatus WorkerConnector::status() const {
  std::lock_guard lock(mutex_);
  SupervisorStatus s;
  for (const auto& slot : slots_) {
    if (slot->state == Slot::State::kReady) ++s.readyWorkers;
  }
  s.state = disabled_            ? "disabled"
            : s.readyWorkers > 0 ? "ready"
            : firstAttemptDone_  ? "restarting"
                                 : "starting";
  s.lastError = lastError_;
  s.restarts = restarts_;
  s.crashes = crashes_;
  return s;
}

RpcError WorkerConnector::unavailableError() const {
  std::string message = "connector '" + spec_.connectorId + "' is unavailable";
  if (disabled_ && permanent_) {
    message += " (disabled: it cannot start until the cause below is fixed and the host restarted)";
  } else if (disabled_) {
    message += " (disabled after repeated failures; fix the cause and restart the host)";
  } else if (nextStart_ > Clock::now()) {
    message += " (restarting in " +
               seconds(std::chrono::duration_cast<std::chrono::milliseconds>(nextStart_ - Clock::now())) +
               ")";
  }
  if (!lastError_.empty()) message += ": " + lastError_;
  return RpcError{protocol::errc::kInternalError,
                  message,
                  {{"connector", spec_.connectorId}, {"state", disabled_ ? "disabled" : "unavailable"}}};
}

Expected<Descriptor, RpcError> WorkerConnector::describe() {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, spec_.policy.startTimeout * 2 + 1s,
                    [this] { return firstAttemptDone_ || stopping_; });
  if (disabled_ || descriptor_.is_null()) return unexpected(unavailableError());
  Descriptor d;
  auto part = [&](const char* key) { return descriptor_.contains(key) ? descriptor_[key] : Json::array(); };
  d.tools = part("tools");
  d.resources = part("resources");
  d.resourceTemplates = part("resourceTemplates");
  d.prompts = part("prompts");
  return d;
}

WorkerConnector::Slot* WorkerConnector::pickSlot() {
  Slot* best = nullptr;
  for (auto& slot : slots_) {
    if (slot->state != Slot::State::kReady) continue;
    if (best == nullptr || slot->pending.size() < best->pending.size()) best = slot.get();
  }
  return best;
}

Outcome WorkerConnector::callTool(std::string_view name, const Json& arguments, CallContext& ctx) {
  Json params = {{"name", name}, {"arguments", arguments}};
  return request("tools/call", std::move(params), &ctx, spec_.policy.callTimeout,
                 "tools/call '" + std::string(name) + "'");
}

Outcome WorkerConnector::readResource(std::string_view uri, CallContext& ctx) {
  return request("resources/read", Json{{"uri", uri}}, &ctx, spec_.policy.callTimeout,
                 "resources/read '" + std::string(uri) + "'");
}

Outcome WorkerConnector::getPrompt(std::string_view name, const Json& arguments, CallContext& ctx) {
  return request("prompts/get", Json{{"name", name}, {"arguments", arguments}}, &ctx,
                 spec_.policy.callTimeout, "prompts/get '" + std::string(name) + "'");
}

Outcome WorkerConnector::complete(const Json& ref, const Json& argument, const Json& context,
                                  CallContext& ctx) {
  Json params = {{"ref", ref}, {"argument", argument}};
  if (!context.is_null()) params["context"] = context;
  return request("completion/complete", std::move(params), &ctx, spec_.policy.callTimeout,
                 "completion/complete");
}

Outcome WorkerConnector::subscribe(std::string_view uri) {
  return request("resources/subscribe", Json{{"uri", uri}}, nullptr, spec_.policy.callTimeout,
                 "resources/subscribe '" + std::string(uri) + "'");
}

Outcome WorkerConnector::unsubscribe(std::string_view uri) {
  return request("resources/unsubscribe", Json{{"uri", uri}}, nullptr, spec_.policy.callTimeout,
                 "resources/unsubscribe '" + std::string(uri) + "'");
}

Outcome WorkerConnector::request(const std::string& method, Json params, CallContext* ctx,
                                 std::chrono::milliseconds timeout, const std::string& label) {
  if (ctx != nullptr && !spec_.mcpStdio) {
    // Answers of this round join those a deferred job carries from the round that deferred it.
    const Json& responses = ctx->inputResponses();
    if (responses.is_object() && !responses.empty()) {
      if (!params.contains("inputResponses") || !params["inputResponses"].is_object()) {
        params["inputResponses"] = Json::object();
      }
      for (const auto& [key, value] : responses.items()) params["inputResponses"][key] = value;
    }
    if (!ctx->state().is_null()) params["requestState"] = ctx->state();
  }
  std::unique_lock lock(mutex_);
  // A call that arrives while a worker (re)starts waits for it, within the start timeout.
  const auto waitUntil = Clock::now() + spec_.policy.startTimeout;
  Slot* slot = nullptr;
  while ((slot = pickSlot()) == nullptr) {
    const bool starting = std::any_of(slots_.begin(), slots_.end(),
                                      [](const auto& s) { return s->state == Slot::State::kStarting; });
    if (disabled_ || stopping_ || Clock::now() >= waitUntil || (!starting && nextStart_ > waitUntil)) {
      return unavailableError();
    }
    changed_.wait_for(lock, 20ms);
  }
  auto call = std::make_shared<Pending>();
  call->id = nextId_++;
  call->method = method;
  call->label = label;
  call->timeout = timeout;
  call->deadline = Clock::now() + timeout;
  Json context = {{"deadline", unixMillis(call->deadline)}};
  if (ctx != nullptr) {
    // The id the client sees as X-Request-Id, or our own, so that host and connector logs of
    // one call can be joined.
    const std::string_view correlation = ctx->correlationId();
    call->correlationId = correlation.empty() ? randomToken(8) : std::string(correlation);
    context["correlationId"] = call->correlationId;
    const Caller& who = ctx->caller();
    context["caller"] = auth::publicView(who);
    if (!who.exchangedToken.empty()) context["caller"]["accessToken"] = who.exchangedToken;
    Json caps = Json::object();
    for (const char* cap : {"elicitation", "sampling", "roots"}) {
      if (ctx->clientSupports(cap)) caps[cap] = Json::object();
    }
    context["clientCapabilities"] = std::move(caps);
  }
  if (!params.contains("_meta") || !params["_meta"].is_object()) params["_meta"] = Json::object();
  if (spec_.mcpStdio) {
    params["_meta"]["progressToken"] = call->id;  // MCP servers know nothing of mcphost's context
  } else {
    params["_meta"]["io.mcphost/context"] = std::move(context);
  }
  slot->pending.emplace(call->id, call);
  ++slot->calls;
  slot->lastActivity = Clock::now();
  auto process = slot->process;
  lock.unlock();
  process->send(Json{{"jsonrpc", "2.0"}, {"id", call->id}, {"method", method}, {"params", params}});
  lock.lock();

  bool clientCancelled = false;
  Clock::time_point cancelledAt{};
  auto applyEvents = [&] {
    while (!call->events.empty()) {
      Json event = std::move(call->events.front());
      call->events.pop_front();
      if (ctx == nullptr) continue;
      lock.unlock();
      const std::string kind = event.value("method", "");
      const Json& p = event["params"];
      if (kind == "notifications/progress") {
        std::optional<double> total;
        if (p.contains("total") && p["total"].is_number()) total = p["total"].get<double>();
        ctx->progress(p.value("progress", 0.0), total, p.value("message", ""));
      } else if (kind == "notifications/message") {
        auto level = parseLogLevel(p.value("level", "info"));
        ctx->log(level.value_or(LogLevel::kInfo), p.value("logger", ""), p.value("data", Json()));
      } else if (kind == "mcphost/releaseStream") {
        ctx->closeResponseStream();
      }
      lock.lock();
    }
  };
  while (!call->done) {
    call->cv.wait_for(lock, 25ms);
    applyEvents();
    if (call->done) break;
    if (ctx != nullptr && !clientCancelled && ctx->cancelled()) {
      clientCancelled = true;
      cancelledAt = Clock::now();
      if (!call->cancelSent) {
        call->cancelSent = true;
        lock.unlock();
        process->send(
            Json{{"jsonrpc", "2.0"},
                 {"method", "notifications/cancelled"},
                 {"params", {{"requestId", call->id}, {"reason", "the client cancelled the request"}}}});
        lock.lock();
      }
    }
    if (clientCancelled && Clock::now() >= cancelledAt + spec_.policy.cancelGrace) {
      // The worker keeps the call until it finishes or its deadline kills it; the caller is done.
      return RpcError{
          protocol::errc::kInternalError, label + " was cancelled", {{"connector", spec_.connectorId}}};
    }
  }
  applyEvents();
  // A list_changed the worker sent before this result is published before the result leaves.
  changed_.wait_for(lock, 2s, [this] { return refreshesInFlight_ == 0; });
  lock.unlock();
  return interpret(method, params, label, *call);
}

Outcome WorkerConnector::interpret(const std::string& method, const Json& params, const std::string& label,
                                   Pending& call) {
  const Json ids = {{"connector", spec_.connectorId}};
  if (!call.failure.empty()) return RpcError{protocol::errc::kInternalError, call.failure, ids};
  if (!call.error.is_null() && spec_.mcpStdio) {
    // An MCP server's own JSON-RPC error: keep its code; say which connector for internal ones.
    const int code = call.error.value("code", protocol::errc::kInternalError);
    std::string message = call.error.value("message", std::string("the MCP server failed"));
    if (code == protocol::errc::kInternalError) message = "connector '" + spec_.connectorId + "': " + message;
    return RpcError{code, message, call.error.value("data", Json(ids))};
  }
  if (!call.error.is_null()) {
    const std::string message = call.error.value("message", std::string("the connector failed"));
    const Json data = call.error.value("data", Json::object());
    const int status = data.is_object() ? data.value("mcphStatus", 13) : 13;
    Json details = {{"connector", spec_.connectorId}, {"status", statusName(status)}};
    switch (status) {
      case 3:
        return RpcError{protocol::errc::kInvalidParams, message, details};
      case 5:
        if (method == "resources/read") {
          return RpcError{protocol::errc::kResourceNotFound, message, {{"uri", params.value("uri", "")}}};
        }
        return RpcError{protocol::errc::kInvalidParams, message, details};
      case 12:
        return RpcError{protocol::errc::kMethodNotFound, message, details};
      case 4:
        return RpcError{protocol::errc::kRequestTimeout, message, details};
      default:
        return RpcError{protocol::errc::kInternalError,
                        "connector '" + spec_.connectorId + "' failed " + label + ": " + message, details};
    }
  }
  Json& result = call.result;
  if (!result.is_object()) {
    return RpcError{protocol::errc::kInternalError,
                    "connector '" + spec_.connectorId + "' returned a result that is not a JSON object", ids};
  }
  const std::string type = result.value("resultType", "");
  if (type == "input_required") {
    InputRequired ask;
    const Json requests = result.value("inputRequests", Json());
    bool valid = requests.is_object() && !requests.empty();
    if (valid) {
      for (const auto& [key, r] : requests.items()) {
        valid = valid && r.is_object() && r.contains("method") && r["method"].is_string() &&
                kInputMethods.count(r["method"].get<std::string>()) != 0;
      }
    }
    if (!valid) {
      return RpcError{protocol::errc::kInternalError,
                      "connector '" + spec_.connectorId +
                          "' asked for input with malformed inputRequests (each needs a method of "
                          "elicitation/create, sampling/createMessage or roots/list)",
                      ids};
    }
    ask.requests = requests;
    ask.state = result.value("requestState", Json());
    return ask;
  }
  if (type == "deferred") {
    if (method != "tools/call") {
      return RpcError{protocol::errc::kInternalError,
                      "connector '" + spec_.connectorId + "' deferred " + label + "; only tools/call may",
                      ids};
    }
    // The job re-runs the call with the answers that led to it (a task has no client round).
    Json base = params;
    if (base.contains("_meta")) base["_meta"].erase("io.mcphost/context");
    std::weak_ptr<WorkerConnector> weak = weak_from_this();
    Deferred deferred;
    deferred.taskRequired = result.value("taskRequired", false);
    deferred.job = [weak, base, label](CallContext& ctx) -> Outcome {
      auto self = weak.lock();
      if (!self) return RpcError{protocol::errc::kInternalError, "the connector is gone", nullptr};
      Json run = base;
      run["_meta"]["io.mcphost/run"] = {{"inTask", ctx.inTask()}};
      const auto timeout = ctx.inTask() ? self->spec_.policy.taskTimeout : self->spec_.policy.callTimeout;
      Outcome out = self->request("tools/call", std::move(run), &ctx, timeout, label);
      if (out.get_if<Deferred>() != nullptr) {
        return RpcError{protocol::errc::kInternalError, "the connector deferred its work twice", nullptr};
      }
      return out;
    };
    return deferred;
  }
  return std::move(result);
}

}  // namespace mcphost::connectors
