#include "worker/worker_runtime.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace mcphost::worker {

namespace {

WorkerRuntime* gRuntime = nullptr;  // one connector instance per worker process
thread_local std::string tLastError;

constexpr std::size_t kMaxLogBytes = 8192;
constexpr std::array<const char*, 8> kLevelNames = {"debug", "info",     "notice", "warning",
                                                    "error", "critical", "alert",  "emergency"};

const char* levelName(int32_t level) {
  return kLevelNames.at(static_cast<std::size_t>(std::clamp<int32_t>(level, 0, 7)));
}

std::string text(mcph_bytes b) {
  return b.ptr == nullptr ? std::string() : std::string(b.ptr, b.len);
}

// Copy-out with the size probe the header documents.
mcph_status copyOut(const std::string& value, char* buf, size_t cap, size_t* len) {
  if (len == nullptr) return MCPH_INVALID_ARGUMENT;
  *len = value.size();
  if (value.empty()) return MCPH_OK;
  if (buf == nullptr || cap < value.size()) return MCPH_OUT_OF_RANGE;
  std::copy(value.begin(), value.end(), buf);  // bytes, not a C string: no terminator
  return MCPH_OK;
}

Json parseOrString(const std::string& s) {
  Json v = Json::parse(s, nullptr, false);
  return v.is_discarded() ? Json(s) : v;
}

std::string dump(const Json& v) {
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

struct WorkerRuntime::LiveCall {
  Json id;
  Json context;  // {"caller","deadline","clientCapabilities"} from the host's _meta
  std::atomic<bool> cancelled{false};
  // The cancel hook runs at most once and never after complete() returns: complete() waits
  // for a hook that is running on another thread (the connector frees its state after).
  std::mutex hookMutex;
  std::condition_variable hookDone;
  void (*hook)(void*) = nullptr;
  void* hookUser = nullptr;
  bool hookFired = false;
  bool completed = false;
  std::thread::id hookRunner;
  bool hookRunning = false;
};

WorkerRuntime::WorkerRuntime(FrameSocket& socket, InstanceSettings settings)
    : socket_(socket), settings_(std::move(settings)) {
  gRuntime = this;
}

WorkerRuntime::~WorkerRuntime() {
  {
    std::lock_guard lock(queueMutex_);
    stopping_ = true;
  }
  queueReady_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  for (auto& [name, value] : settings_.secrets) {
    volatile char* p = value.data();
    for (std::size_t i = 0; i < value.size(); ++i) p[i] = 0;
  }
  gRuntime = nullptr;
}

const mcph_host_api_v1* WorkerRuntime::hostApi() {
  static const mcph_host_api_v1 api = {
      sizeof(mcph_host_api_v1),
      MCPH_ABI_MINOR,
      &apiLog,
      &apiSetError,
      &apiConfigGet,
      &apiSecretGet,
      &apiNotify,
      &apiCallerGet,
      &apiDeadline,
      &apiClientSupports,
      &apiProgress,
      &apiClientLog,
      &apiIsCancelled,
      &apiOnCancel,
      &apiReleaseStream,
      &apiComplete,
  };
  return &api;
}

std::string WorkerRuntime::takeError() {
  std::string e = std::move(tLastError);
  tLastError.clear();
  return e;
}

void WorkerRuntime::notify(const std::string& method, Json params) {
  Json message = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) message["params"] = std::move(params);
  socket_.send(dump(message));
}

void WorkerRuntime::hostLog(int32_t level, std::string message) {
  if (message.size() > kMaxLogBytes) message.resize(kMaxLogBytes);
  notify("mcphost/log", {{"level", levelName(level)}, {"message", std::move(message)}});
}

void WorkerRuntime::respond(const Json& id, Json result) {
  std::string frame = dump(Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
  if (frame.size() > kDefaultMaxFrameBytes) {
    respondError(id, MCPH_RESOURCE_EXHAUSTED,
                 "the connector's result is " + std::to_string(frame.size()) + " bytes, above the " +
                     std::to_string(kDefaultMaxFrameBytes) + "-byte limit of the worker channel");
    return;
  }
  socket_.send(frame);
}

void WorkerRuntime::respondError(const Json& id, mcph_status status, const std::string& message) {
  Json error = {{"code", -32603}, {"message", message}, {"data", {{"mcphStatus", status}}}};
  socket_.send(dump(Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}}));
}

int WorkerRuntime::serve(const mcph_connector_api_v1* api, mcph_connector instance) {
  api_ = api;
  instance_ = instance;
  const bool concurrent = (api->flags & MCPH_CONNECTOR_CONCURRENT) != 0;
  const std::size_t n = concurrent ? std::max<std::size_t>(1, settings_.threads) : 1;
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { dispatchLoop(); });

  for (;;) {
    auto frame = socket_.receive();
    if (!frame) return 0;  // the host closed the channel: it wants us gone
    Json message = Json::parse(*frame, nullptr, false);
    if (!message.is_object()) continue;
    const std::string method = message.value("method", "");
    const bool isRequest = message.contains("id");
    if (method == "mcphost/shutdown") return 0;
    if (method == "notifications/cancelled") {
      onCancelled(message.value("params", Json::object()).value("requestId", Json()));
      continue;
    }
    if (!isRequest) continue;
    if (method == "ping") {
      respond(message["id"], Json::object());
      continue;
    }
    Task task{message["id"], method, message.value("params", Json::object())};
    {
      std::lock_guard lock(queueMutex_);
      queue_.push_back(std::move(task));
    }
    queueReady_.notify_one();
  }
}

void WorkerRuntime::dispatchLoop() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(queueMutex_);
      queueReady_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    run(std::move(task));
  }
}

void WorkerRuntime::run(Task task) {
  if (task.method == "mcphost/describe") {
    mcph_bytes out{nullptr, 0};
    const mcph_status st = api_->describe(instance_, &out);
    if (st != MCPH_OK) {
      const std::string detail = takeError();
      respondError(task.id, st, detail.empty() ? "describe failed" : detail);
      return;
    }
    Json descriptor = Json::parse(text(out), nullptr, false);
    if (!descriptor.is_object()) {
      respondError(task.id, MCPH_INTERNAL, "describe returned something other than a JSON object");
      return;
    }
    respond(task.id, std::move(descriptor));
    return;
  }
  if (task.method == "mcphost/health") {
    mcph_status st = MCPH_OK;
    if (api_->struct_size >= offsetof(mcph_connector_api_v1, check_health) + sizeof(api_->check_health) &&
        api_->check_health != nullptr) {
      st = api_->check_health(instance_);
    }
    respond(task.id, {{"status", st == MCPH_OK ? "ok" : "unavailable"}, {"detail", takeError()}});
    return;
  }
  // An MCP request: the host's per-call context travels in _meta and stays on this side.
  auto call = std::make_shared<LiveCall>();
  call->id = task.id;
  if (auto meta = task.params.find("_meta"); meta != task.params.end() && meta->is_object()) {
    if (auto ctx = meta->find("io.mcphost/context"); ctx != meta->end()) {
      call->context = std::move(*ctx);
      meta->erase("io.mcphost/context");
      // The one piece of context a connector gets in its params: for its own logs.
      if (call->context.contains("correlationId"))
        (*meta)["io.mcphost/correlationId"] = call->context["correlationId"];
    }
    if (meta->empty()) task.params.erase("_meta");
  }
  std::uint64_t handle = 0;
  {
    std::lock_guard lock(callsMutex_);
    handle = nextCall_++;
    calls_.emplace(handle, call);
  }
  const std::string params = dump(task.params);
  const mcph_status st = api_->handle(
      instance_, reinterpret_cast<mcph_call>(static_cast<std::uintptr_t>(handle)),
      mcph_bytes{task.method.data(), task.method.size()}, mcph_bytes{params.data(), params.size()});
  if (st != MCPH_OK) {
    bool stillLive = false;
    {
      std::lock_guard lock(callsMutex_);
      stillLive = calls_.erase(handle) > 0;
    }
    const std::string detail = takeError();
    if (stillLive) respondError(task.id, st, detail.empty() ? "the connector refused the request" : detail);
  }
}

void WorkerRuntime::onCancelled(const Json& requestId) {
  std::vector<std::shared_ptr<LiveCall>> hit;
  {
    std::lock_guard lock(callsMutex_);
    for (auto& [handle, call] : calls_) {
      if (call->id == requestId) hit.push_back(call);
    }
  }
  for (auto& call : hit) {
    call->cancelled = true;
    runHook(*call);
  }
}

void WorkerRuntime::runHook(LiveCall& call) {
  void (*fn)(void*) = nullptr;
  void* user = nullptr;
  {
    std::lock_guard lock(call.hookMutex);
    if (call.hook == nullptr || call.hookFired || call.completed) return;
    call.hookFired = true;
    call.hookRunning = true;
    call.hookRunner = std::this_thread::get_id();
    fn = call.hook;
    user = call.hookUser;
  }
  fn(user);
  {
    std::lock_guard lock(call.hookMutex);
    call.hookRunning = false;
  }
  call.hookDone.notify_all();
}

std::shared_ptr<WorkerRuntime::LiveCall> WorkerRuntime::findCall(mcph_call c) {
  const auto handle = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(c));
  std::lock_guard lock(callsMutex_);
  auto it = calls_.find(handle);
  return it == calls_.end() ? nullptr : it->second;
}

// ---- host services ----

void WorkerRuntime::apiLog(mcph_host h, int32_t level, mcph_bytes message) {
  reinterpret_cast<WorkerRuntime*>(h)->hostLog(level, text(message));
}

void WorkerRuntime::apiSetError(mcph_host /*h*/, mcph_bytes message) {
  tLastError = text(message);
  if (tLastError.size() > kMaxLogBytes) tLastError.resize(kMaxLogBytes);
}

mcph_status WorkerRuntime::apiConfigGet(mcph_host h, mcph_bytes key, char* buf, size_t cap, size_t* len) {
  auto* self = reinterpret_cast<WorkerRuntime*>(h);
  const std::string pointer = text(key);
  try {
    const Json::json_pointer ptr(pointer);
    if (!self->settings_.config.contains(ptr)) return MCPH_NOT_FOUND;
    return copyOut(dump(self->settings_.config.at(ptr)), buf, cap, len);
  } catch (const std::exception&) {
    return MCPH_INVALID_ARGUMENT;  // not a JSON pointer
  }
}

mcph_status WorkerRuntime::apiSecretGet(mcph_host h, mcph_bytes name, char* buf, size_t cap, size_t* len) {
  auto* self = reinterpret_cast<WorkerRuntime*>(h);
  const std::string key = text(name);
  const auto& declared = self->settings_.declaredSecrets;
  if (std::find(declared.begin(), declared.end(), key) == declared.end()) return MCPH_PERMISSION_DENIED;
  auto it = self->settings_.secrets.find(key);
  if (it == self->settings_.secrets.end()) return MCPH_NOT_FOUND;
  return copyOut(it->second, buf, cap, len);
}

mcph_status WorkerRuntime::apiNotify(mcph_host h, mcph_bytes method, mcph_bytes params) {
  const std::string m = text(method);
  static const std::array<const char*, 4> kAllowed = {
      "notifications/tools/list_changed", "notifications/prompts/list_changed",
      "notifications/resources/list_changed", "notifications/resources/updated"};
  if (std::find(kAllowed.begin(), kAllowed.end(), m) == kAllowed.end()) return MCPH_INVALID_ARGUMENT;
  Json p = params.len == 0 ? Json() : Json::parse(text(params), nullptr, false);
  if (p.is_discarded()) return MCPH_INVALID_ARGUMENT;
  reinterpret_cast<WorkerRuntime*>(h)->notify(m, std::move(p));
  return MCPH_OK;
}

mcph_status WorkerRuntime::apiCallerGet(mcph_call c, char* buf, size_t cap, size_t* len) {
  auto call = gRuntime->findCall(c);
  if (!call) return MCPH_FAILED_PRECONDITION;
  return copyOut(dump(call->context.value("caller", Json::object())), buf, cap, len);
}

int64_t WorkerRuntime::apiDeadline(mcph_call c) {
  auto call = gRuntime->findCall(c);
  if (!call) return 0;
  auto it = call->context.find("deadline");
  return it != call->context.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

int32_t WorkerRuntime::apiClientSupports(mcph_call c, mcph_bytes capability) {
  auto call = gRuntime->findCall(c);
  if (!call) return 0;
  auto caps = call->context.find("clientCapabilities");
  return caps != call->context.end() && caps->is_object() && caps->contains(text(capability)) ? 1 : 0;
}

mcph_status WorkerRuntime::apiProgress(mcph_call c, double progress, double total, mcph_bytes message) {
  auto call = gRuntime->findCall(c);
  if (!call) return MCPH_FAILED_PRECONDITION;
  Json params = {{"requestId", call->id}, {"progress", progress}};
  if (total >= 0) params["total"] = total;
  if (message.len > 0) params["message"] = text(message);
  gRuntime->notify("notifications/progress", std::move(params));
  return MCPH_OK;
}

mcph_status WorkerRuntime::apiClientLog(mcph_call c, int32_t level, mcph_bytes logger, mcph_bytes data) {
  auto call = gRuntime->findCall(c);
  if (!call) return MCPH_FAILED_PRECONDITION;
  if (level < MCPH_LOG_DEBUG || level > MCPH_LOG_EMERGENCY) return MCPH_INVALID_ARGUMENT;
  Json params = {{"requestId", call->id}, {"level", levelName(level)}, {"data", parseOrString(text(data))}};
  if (logger.len > 0) params["logger"] = text(logger);
  gRuntime->notify("notifications/message", std::move(params));
  return MCPH_OK;
}

int32_t WorkerRuntime::apiIsCancelled(mcph_call c) {
  auto call = gRuntime->findCall(c);
  return !call || call->cancelled ? 1 : 0;
}

mcph_status WorkerRuntime::apiOnCancel(mcph_call c, void (*fn)(void*), void* user) {
  auto call = gRuntime->findCall(c);
  if (!call) return MCPH_FAILED_PRECONDITION;
  if (fn == nullptr) return MCPH_INVALID_ARGUMENT;
  {
    std::lock_guard lock(call->hookMutex);
    if (call->hookFired || call->hook != nullptr) return MCPH_FAILED_PRECONDITION;  // one hook per call
    call->hook = fn;
    call->hookUser = user;
  }
  if (call->cancelled) gRuntime->runHook(*call);
  return MCPH_OK;
}

mcph_status WorkerRuntime::apiReleaseStream(mcph_call c) {
  auto call = gRuntime->findCall(c);
  if (!call) return MCPH_FAILED_PRECONDITION;
  gRuntime->notify("mcphost/releaseStream", {{"requestId", call->id}});
  return MCPH_OK;
}

mcph_status WorkerRuntime::apiComplete(mcph_call c, mcph_status status, mcph_bytes result) {
  const auto handle = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(c));
  std::shared_ptr<LiveCall> call;
  {
    std::lock_guard lock(gRuntime->callsMutex_);
    auto it = gRuntime->calls_.find(handle);
    if (it != gRuntime->calls_.end()) {
      call = std::move(it->second);
      gRuntime->calls_.erase(it);
    }
  }
  if (!call) {
    gRuntime->hostLog(MCPH_LOG_ERROR, "complete() called for call " + std::to_string(handle) +
                                          ", which is already complete or was never issued (connector bug)");
    return MCPH_FAILED_PRECONDITION;
  }
  {
    std::unique_lock lock(call->hookMutex);
    call->completed = true;  // no hook starts from now on
    if (call->hookRunner != std::this_thread::get_id()) {
      call->hookDone.wait(lock, [&] { return !call->hookRunning; });
    }
  }
  if (status != MCPH_OK) {
    gRuntime->respondError(call->id, status, text(result));
    return MCPH_OK;
  }
  Json parsed = Json::parse(text(result), nullptr, false);
  if (!parsed.is_object()) {
    gRuntime->respondError(call->id, MCPH_INTERNAL, "the connector completed the call with invalid JSON");
    return MCPH_OK;
  }
  gRuntime->respond(call->id, std::move(parsed));
  return MCPH_OK;
}

}  // namespace mcphost::worker
