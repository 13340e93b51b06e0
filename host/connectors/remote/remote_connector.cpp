#include "connectors/remote/remote_connector.hpp"

#include <Poco/Exception.h>

#include <deque>

#include "connectors/remote/remote_detail.hpp"
#include "observe/log.hpp"

namespace mcphost::connectors {

namespace {

using namespace std::chrono_literals;
using remote::Clock;
using remote::Failure;
using remote::flag;
using remote::seconds;
using remote::str;
namespace errc = protocol::errc;

// The upstream's JSON-RPC error as ours: code and message kept (clients and the router act on
// the code), the connector named in data, and in the message of an internal error.
RpcError translate(const std::string& id, const Json& error) {
  int code = errc::kInternalError;
  if (error.is_object() && error.contains("code") && error["code"].is_number_integer())
    code = error["code"].get<int>();
  std::string message = str(error, "message");
  if (message.empty()) message = "the upstream failed without a message";
  if (code == errc::kInternalError) message = "connector '" + id + "': " + message;
  Json data = error.is_object() && error.contains("data") ? error["data"] : Json();
  if (data.is_object()) {
    if (data.contains("connector")) data["upstreamConnector"] = data["connector"];
    data["connector"] = id;
  } else {
    data = data.is_null() ? Json{{"connector", id}} : Json{{"connector", id}, {"upstream", data}};
  }
  return RpcError{code, std::move(message), std::move(data)};
}

// Progress and log messages the upstream sent on a request's stream, to the caller's context.
void deliver(const Json& event, CallContext* ctx, const Json& token) {
  if (ctx == nullptr) return;
  const Json params =
      event.contains("params") && event["params"].is_object() ? event["params"] : Json::object();
  if (str(event, "method") == "notifications/progress") {
    if (token.is_null() || params.value("progressToken", Json()) != token) return;
    if (!params.contains("progress") || !params["progress"].is_number()) return;
    std::optional<double> total;
    if (params.contains("total") && params["total"].is_number()) total = params["total"].get<double>();
    ctx->progress(params["progress"].get<double>(), total, str(params, "message"));
    return;
  }
  const auto level = parseLogLevel(str(params, "level"));
  ctx->log(level.value_or(LogLevel::kInfo), str(params, "logger"), params.value("data", Json()));
}

Outcome toOutcome(Expected<Json, RpcError>&& result) {
  if (result) return std::move(result.value());
  return result.error();
}

}  // namespace

std::shared_ptr<RemoteConnector> RemoteConnector::create(RemoteSpec spec) {
  auto self = std::make_shared<RemoteConnector>(Private{}, std::move(spec));
  // Raw pointers: the threads are joined in shutdown(), which the destructor calls.
  auto guarded = [raw = self.get()](void (RemoteConnector::*loop)(), const char* name) {
    return std::thread([raw, loop, name] {
      try {
        (raw->*loop)();
      } catch (const std::exception& e) {  // a thread must not take the host down
        log::error("remote", "background thread failed; reconnects and list updates stop",
                   {{"connector", raw->spec_.connectorId}, {"thread", name}, {"error", e.what()}});
      }
    });
  };
  self->maintainer_ = guarded(&RemoteConnector::maintain, "maintain");
  if (self->spec_.listen) self->listener_ = guarded(&RemoteConnector::listen, "listen");
  return self;
}

RemoteConnector::RemoteConnector(Private /*tag*/, RemoteSpec spec)
    : spec_(std::move(spec)), backoff_(spec_.backoffInitial) {
  auto endpoint = remote::parseEndpoint(spec_.url);
  if (!endpoint) {
    state_ = State::kInvalid;
    lastError_ = endpoint.error();
    url_ = "(invalid url)";
    return;
  }
  url_ = endpoint->display;
  try {
    http_ = std::make_unique<remote::HttpClient>(
        *endpoint, spec_.headers,
        remote::HttpLimits{spec_.maxResponseBytes, spec_.maxJsonDepth, spec_.startTimeout});
  } catch (const Poco::Exception& e) {
    state_ = State::kInvalid;
    lastError_ = "cannot set up TLS for " + url_ + ": " + e.displayText();
  }
  spec_.headers.clear();  // the credentials live in one place: the HTTP client
}

RemoteConnector::~RemoteConnector() {
  shutdown();
}

void RemoteConnector::shutdown() {
  std::optional<Session> last;
  {
    std::lock_guard lock(mutex_);
    if (stopping_.exchange(true)) return;
    if (listening_ != nullptr) listening_->abort();
    last = session_;
    if (state_ != State::kInvalid) state_ = State::kStopped;
    changed_.notify_all();
  }
  if (maintainer_.joinable()) maintainer_.join();
  if (listener_.joinable()) listener_.join();
  // End the upstream session politely; a server that does not allow it answers 405.
  if (last && !last->id.empty()) post(*last, Json(), "DELETE", std::chrono::seconds(2));
}

void RemoteConnector::attach(ConnectorEvents* events) {
  std::lock_guard lock(eventsMutex_);
  events_ = events;
}

RemoteStatus RemoteConnector::status() const {
  std::lock_guard lock(mutex_);
  RemoteStatus s;
  switch (state_) {
    case State::kStarting:
      s.state = "starting";
      break;
    case State::kReady:
      s.state = "ready";
      break;
    case State::kReconnecting:
      s.state = "reconnecting";
      break;
    case State::kInvalid:
      s.state = "invalid";
      break;
    case State::kStopped:
      s.state = "stopped";
      break;
  }
  s.lastError = lastError_;
  if (session_) s.protocolVersion = session_->version;
  return s;
}

RpcError RemoteConnector::failure(const std::string& label, const std::string& what, int code) const {
  return RpcError{code,
                  "connector '" + spec_.connectorId + "' failed " + label + ": " + what,
                  {{"connector", spec_.connectorId}, {"url", url_}}};
}

RpcError RemoteConnector::unavailable(const std::string& label) const {
  if (state_ == State::kInvalid) return failure(label, "the connector is misconfigured: " + lastError_);
  std::string why = "the upstream is unavailable";
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(nextAttempt_ - Clock::now());
  if (state_ == State::kReconnecting && wait >= 100ms) why += " (next attempt in " + seconds(wait) + ")";
  if (!lastError_.empty()) why += ": " + lastError_;
  return failure(label, why);
}

std::string RemoteConnector::reasonOf(const std::string& message) const {
  // Our messages start "connector 'id' failed ..." (or "connector 'id': ..." when translated);
  // status() and /readyz add the connector name themselves.
  for (const std::string& prefix :
       {"connector '" + spec_.connectorId + "' ", "connector '" + spec_.connectorId + "': "}) {
    if (message.starts_with(prefix)) return message.substr(prefix.size());
  }
  return message;
}

bool RemoteConnector::supports(const char* capability, const char* name) const {
  std::lock_guard lock(mutex_);
  if (!session_) return true;  // not known yet: let the upstream answer
  const Json& caps = session_->capabilities;
  if (name != nullptr) return flag(caps, capability, name);
  return caps.is_object() && caps.contains(capability);
}

Expected<Descriptor, RpcError> RemoteConnector::describe() {
  std::unique_lock lock(mutex_);
  if (descriptor_.is_null() && state_ == State::kStarting && !describing_) {
    // The lazy first connection. It publishes nothing: the catalog is being built right now.
    describing_ = true;
    lock.unlock();
    try {
      refresh(0, /*publish=*/false);
    } catch (const std::exception& e) {
      markUnavailable(std::string("internal failure: ") + e.what());
    }
    lock.lock();
    describing_ = false;
    changed_.notify_all();
  }
  changed_.wait(lock, [this] { return !describing_; });
  if (descriptor_.is_null()) return unexpected(unavailable("describe"));
  Descriptor d;
  d.tools = descriptor_["tools"];
  d.resources = descriptor_["resources"];
  d.resourceTemplates = descriptor_["resourceTemplates"];
  d.prompts = descriptor_["prompts"];
  return d;
}

Outcome RemoteConnector::callTool(std::string_view name, const Json& arguments, CallContext& ctx) {
  Json params = {{"name", name}, {"arguments", arguments.is_object() ? arguments : Json::object()}};
  return toOutcome(
      roundTrip("tools/call", params, &ctx, spec_.callTimeout, "tools/call '" + std::string(name) + "'"));
}

Outcome RemoteConnector::readResource(std::string_view uri, CallContext& ctx) {
  return toOutcome(roundTrip("resources/read", Json{{"uri", uri}}, &ctx, spec_.callTimeout,
                             "resources/read '" + std::string(uri) + "'"));
}

Outcome RemoteConnector::getPrompt(std::string_view name, const Json& arguments, CallContext& ctx) {
  Json params = {{"name", name}};
  if (arguments.is_object() && !arguments.empty()) params["arguments"] = arguments;
  return toOutcome(
      roundTrip("prompts/get", params, &ctx, spec_.callTimeout, "prompts/get '" + std::string(name) + "'"));
}

Outcome RemoteConnector::complete(const Json& ref, const Json& argument, const Json& context,
                                  CallContext& ctx) {
  Json params = {{"ref", ref}, {"argument", argument}};
  if (!context.is_null()) params["context"] = context;
  return toOutcome(roundTrip("completion/complete", params, &ctx, spec_.callTimeout, "completion/complete"));
}

Outcome RemoteConnector::subscribe(std::string_view uri) {
  const std::string label = "resources/subscribe '" + std::string(uri) + "'";
  if (!supports("resources", "subscribe")) {
    return failure(label, "the upstream does not offer resource subscriptions", errc::kMethodNotFound);
  }
  auto result = roundTrip("resources/subscribe", Json{{"uri", uri}}, nullptr, spec_.callTimeout, label);
  if (result) {
    std::lock_guard lock(mutex_);
    subscriptions_.emplace(uri);  // renewed on every new upstream session
  }
  return toOutcome(std::move(result));
}

Outcome RemoteConnector::unsubscribe(std::string_view uri) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = subscriptions_.find(uri); it != subscriptions_.end()) subscriptions_.erase(it);
  }
  if (!supports("resources", "subscribe")) return Json::object();
  return toOutcome(roundTrip("resources/unsubscribe", Json{{"uri", uri}}, nullptr, spec_.callTimeout,
                             "resources/unsubscribe '" + std::string(uri) + "'"));
}

RemoteConnector::Result RemoteConnector::roundTrip(const std::string& method, const Json& params,
                                                   CallContext* ctx, std::chrono::milliseconds timeout,
                                                   const std::string& label) {
  try {
    return exchangeWithRetry(method, params, ctx, timeout, label);
  } catch (const std::exception& e) {  // e.g. no thread for the exchange: an error, never a crash
    return unexpected(failure(label, std::string("internal failure: ") + e.what()));
  }
}

RemoteConnector::Result RemoteConnector::exchangeWithRetry(const std::string& method, const Json& params,
                                                           CallContext* ctx,
                                                           std::chrono::milliseconds timeout,
                                                           const std::string& label) {
  auto session = acquireSession(label);
  if (!session) return unexpected(session.error());
  for (int attempt = 0;; ++attempt) {
    const std::int64_t id = nextId_++;
    Json request = params;
    Json token;
    if (ctx != nullptr) {
      // Our own token upstream, mapped back in deliver(): nothing of the client's request but
      // its arguments leaves this host, and the host drops progress the client did not ask for.
      token = "mcphost-" + std::to_string(id);
      if (!request.is_object()) request = Json::object();
      request["_meta"] = {{"progressToken", token}};
    }
    const Session current = session.value();
    remote::Exchange ex;
    ex.message = protocol::makeRequest(id, method, std::move(request));
    ex.id = id;
    ex.sessionId = current.id;
    ex.protocolVersion = current.version;
    ex.deadline = Clock::now() + timeout;
    ex.onMessage = [this, current](Json&& m) { onServerMessage(std::move(m), current); };
    const Waited waited = await(ex, ctx, token);
    if (waited == Waited::kCancelled || waited == Waited::kTimedOut) {
      // Tell the upstream to stop; an answer that still comes finds nobody waiting.
      const char* reason = waited == Waited::kCancelled ? "the client cancelled the request"
                                                        : "mcphost stopped waiting (timeout)";
      post(current,
           protocol::makeNotification("notifications/cancelled", {{"requestId", id}, {"reason", reason}}));
    }
    if (waited == Waited::kDone && ex.failure == Failure::kNone && ex.status == 404 && !current.id.empty() &&
        attempt == 0) {
      log::info("remote", "the upstream no longer knows our session; initializing a new one",
                {{"connector", spec_.connectorId}, {"url", url_}});
      session = reinitialize(current.generation, label);
      if (!session) return unexpected(session.error());
      continue;
    }
    return interpret(ex, waited, label, timeout);
  }
}

RemoteConnector::Waited RemoteConnector::await(remote::Exchange& ex, CallContext* ctx, const Json& token) {
  // The exchange runs on its own thread so that this one can watch the client's cancellation
  // and the deadline, and hand progress to the context (valid only on the calling thread).
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Json> events;
    bool done = false;
  } shared;
  auto forward = std::move(ex.onMessage);
  ex.onMessage = [&shared, &forward](Json&& m) {
    const std::string method = str(m, "method");
    if (!m.contains("id") && (method == "notifications/progress" || method == "notifications/message")) {
      std::lock_guard lock(shared.mutex);
      shared.events.push_back(std::move(m));
      shared.cv.notify_all();
    } else if (forward) {
      forward(std::move(m));
    }
  };
  Waited waited = Waited::kDone;
  {
    std::jthread worker([this, &ex, &shared] {
      http_->perform(ex);
      std::lock_guard lock(shared.mutex);
      shared.done = true;
      shared.cv.notify_all();
    });
    std::unique_lock lock(shared.mutex);
    for (;;) {
      shared.cv.wait_for(lock, 25ms, [&shared] { return shared.done || !shared.events.empty(); });
      while (!shared.events.empty()) {
        Json event = std::move(shared.events.front());
        shared.events.pop_front();
        lock.unlock();
        deliver(event, ctx, token);
        lock.lock();
      }
      if (shared.done) break;
      if (stopping_) {
        waited = Waited::kStopped;
      } else if (ctx != nullptr && ctx->cancelled()) {
        waited = Waited::kCancelled;
      } else if (Clock::now() >= ex.deadline) {
        waited = Waited::kTimedOut;
      }
      if (waited != Waited::kDone) break;
    }
    lock.unlock();
    if (waited != Waited::kDone) ex.abort();
  }                        // joins the worker; after abort() its blocked read returns at once
  ex.onMessage = nullptr;  // it refers to this frame
  return waited;
}

RemoteConnector::Result RemoteConnector::interpret(const remote::Exchange& ex, Waited waited,
                                                   const std::string& label,
                                                   std::chrono::milliseconds timeout) {
  const std::string late = "no answer from " + url_ + " within " + seconds(timeout);
  switch (waited) {
    case Waited::kStopped:
      return unexpected(failure(label, "the host is shutting down"));
    case Waited::kCancelled:
      return unexpected(failure(label, "the client cancelled the request"));
    case Waited::kTimedOut:
      return unexpected(failure(label, late, errc::kRequestTimeout));
    case Waited::kDone:
      break;
  }
  switch (ex.failure) {
    case Failure::kConnect: {
      const std::string why = "cannot reach " + url_ + ": " + ex.error;
      markUnavailable(why);
      return unexpected(failure(label, why));
    }
    case Failure::kTimeout:
      return unexpected(failure(label, late, errc::kRequestTimeout));
    case Failure::kBroken:
    case Failure::kProtocol:
      return unexpected(failure(label, ex.error + " (" + url_ + ")"));
    case Failure::kAborted:
      return unexpected(failure(label, "the exchange with " + url_ + " was aborted"));
    case Failure::kNone:
      break;
  }
  if (ex.response.is_object()) {
    if (ex.response.contains("error")) return unexpected(translate(spec_.connectorId, ex.response["error"]));
    if (ex.response.contains("result") && ex.response["result"].is_object()) return ex.response["result"];
    return unexpected(failure(label, "the upstream answered without a result object"));
  }
  if (ex.status == 401 || ex.status == 403) {
    return unexpected(failure(label, url_ + " refused the request (HTTP " + std::to_string(ex.status) +
                                         "); check the connector's headers"));
  }
  return unexpected(
      failure(label, url_ + " answered HTTP " + std::to_string(ex.status) + " without a JSON-RPC response"));
}

}  // namespace mcphost::connectors
