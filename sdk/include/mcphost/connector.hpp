// mcphost/connector.hpp -- header-only C++17 layer over the C ABI in connector.h.
//
// Compiled into the connector library, never into the ABI: no C++ type crosses the boundary.
// A connector derives from mcphost::sdk::Connector, declares its tools with a JSON Schema and a
// handler, and exports itself with MCPHOST_CONNECTOR(Class, "name", "version", flags). Every C
// entry point generated here is an exception barrier: a throwing handler becomes an error for
// that one call, never a crash of the worker.
//
//   using namespace mcphost::sdk;
//   class Echo : public Connector {
//    public:
//     Echo(Host& host, const Json& /*config*/) : Connector(host) {
//       tools().add({{"name", "echo"},
//                    {"description", "Echoes its text"},
//                    {"inputSchema", {{"type", "object"},
//                                     {"properties", {{"text", {{"type", "string"}}}}},
//                                     {"required", {"text"}}}}},
//                   [](const Json& args, Call&) -> Outcome {
//                     return textResult(args.value("text", ""));
//                   });
//     }
//   };
//   MCPHOST_CONNECTOR(Echo, "echo", "1.0.0", MCPH_CONNECTOR_CONCURRENT)
//
// Handlers run synchronously on a worker thread and return an Outcome: an MCP result, an
// Error, an InputRequired (ask the user; the handler runs again with the answers) or a
// Deferred (long work the host may run as a task).
#ifndef MCPHOST_CONNECTOR_HPP
#define MCPHOST_CONNECTOR_HPP

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "mcphost/connector.h"

namespace mcphost::sdk {

using Json = nlohmann::json;

enum class LogLevel : int32_t {
  kDebug = MCPH_LOG_DEBUG,
  kInfo = MCPH_LOG_INFO,
  kNotice = MCPH_LOG_NOTICE,
  kWarning = MCPH_LOG_WARNING,
  kError = MCPH_LOG_ERROR,
  kCritical = MCPH_LOG_CRITICAL,
  kAlert = MCPH_LOG_ALERT,
  kEmergency = MCPH_LOG_EMERGENCY,
};

inline mcph_bytes bytes(const std::string& s) {
  return mcph_bytes{s.data(), s.size()};
}
inline mcph_bytes bytes(const char* s) {
  return mcph_bytes{s, s == nullptr ? 0 : std::strlen(s)};
}
inline std::string str(mcph_bytes b) {
  return b.ptr == nullptr ? std::string() : std::string(b.ptr, b.len);
}

// A failure of the connector itself (not an MCP tool error, which is a result with isError).
struct Error {
  mcph_status status = MCPH_INTERNAL;
  std::string message;
};

// A request for client input: key -> {"method", "params"}, plus state to get back next round.
struct InputRequired {
  Json requests = Json::object();
  Json state;  // null when the handler keeps no state between rounds

  InputRequired& ask(const std::string& key, const std::string& method, Json params) {
    Json request = {{"method", method}};
    if (!params.is_null()) request["params"] = std::move(params);
    requests[key] = std::move(request);
    return *this;
  }
};

class Call;
struct Deferred;
using Outcome = std::variant<Json, Error, InputRequired, Deferred>;

// Work the host may run as a background task (io.modelcontextprotocol/tasks) or inline.
struct Deferred {
  std::function<Outcome(Call&)> job;
  bool taskRequired = false;  // callers without the tasks extension get an error
};

// A result with one text content block.
inline Json textResult(const std::string& text) {
  return Json{{"content", Json::array({Json{{"type", "text"}, {"text", text}}})}};
}

// A copy-out value that wipes itself: secrets never linger in freed memory.
class SecretBuffer {
 public:
  SecretBuffer() = default;
  explicit SecretBuffer(std::string value) : value_(std::move(value)) { wipe(value); }
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  SecretBuffer(SecretBuffer&& other) noexcept : value_(std::move(other.value_)) { wipe(other.value_); }
  SecretBuffer& operator=(SecretBuffer&& other) noexcept {
    if (this != &other) {
      wipe(value_);
      value_ = std::move(other.value_);
      wipe(other.value_);
    }
    return *this;
  }
  ~SecretBuffer() { wipe(value_); }
  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }

  // Zeroes every byte s owns, not only size(): a moved-from short string keeps its old
  // characters in its inline buffer, and a cleared one keeps them past size(). Growing to
  // capacity() never reallocates, so this cannot throw.
  static void wipe(std::string& s) noexcept {
    s.resize(s.capacity());
    volatile char* p = s.data();
    for (std::size_t i = 0; i < s.size(); ++i) p[i] = 0;
    s.clear();
  }

 private:
  std::string value_;
};

namespace detail {
// The two-call copy-out protocol of the C ABI, into a std::string. The stack probe is wiped
// afterwards because the same path fetches secrets; a length beyond the buffer is clamped.
template <typename Fn>
mcph_status copyOut(Fn&& fn, std::string& out) {
  size_t needed = 0;
  char probe[256];
  mcph_status st = fn(probe, sizeof probe, &needed);
  if (st == MCPH_OK) out.assign(probe, needed < sizeof probe ? needed : sizeof probe);
  volatile char* p = probe;
  for (std::size_t i = 0; i < sizeof probe; ++i) p[i] = 0;
  if (st != MCPH_OUT_OF_RANGE) return st;
  out.assign(needed, '\0');
  st = fn(out.data(), out.size(), &needed);
  if (st == MCPH_OK) out.resize(needed < out.size() ? needed : out.size());
  return st;
}
}  // namespace detail

// Instance-level host services.
class Host {
 public:
  Host(const mcph_host_api_v1* api, mcph_host host) : api_(api), host_(host) {}
  const mcph_host_api_v1* api() const { return api_; }
  mcph_host handle() const { return host_; }

  void log(LogLevel level, const std::string& message) const {
    api_->log(host_, static_cast<int32_t>(level), bytes(message));
  }
  void setError(const std::string& message) const { api_->set_error(host_, bytes(message)); }
  // A value of the validated config by JSON pointer ("" = all); null when absent.
  Json config(const std::string& pointer = "") const {
    std::string text;
    auto st =
        detail::copyOut([&](char* b, size_t cap,
                            size_t* len) { return api_->config_get(host_, bytes(pointer), b, cap, len); },
                        text);
    if (st != MCPH_OK) return nullptr;
    Json value = Json::parse(text, nullptr, false);
    return value.is_discarded() ? Json(nullptr) : value;
  }
  // A secret declared in the manifest; empty when absent or not declared.
  SecretBuffer secret(const std::string& name) const {
    std::string text;
    auto st = detail::copyOut(
        [&](char* b, size_t cap, size_t* len) { return api_->secret_get(host_, bytes(name), b, cap, len); },
        text);
    SecretBuffer out(st == MCPH_OK ? text : std::string());
    SecretBuffer::wipe(text);
    return out;
  }
  void toolsChanged() const { notify("notifications/tools/list_changed", ""); }
  void promptsChanged() const { notify("notifications/prompts/list_changed", ""); }
  void resourcesChanged() const { notify("notifications/resources/list_changed", ""); }
  void resourceUpdated(const std::string& uri) const {
    notify("notifications/resources/updated",
           Json{{"uri", uri}}.dump(-1, ' ', false, Json::error_handler_t::replace));
  }

 private:
  void notify(const char* method, const std::string& params) const {
    api_->notify(host_, bytes(method), bytes(params));
  }
  const mcph_host_api_v1* api_;
  mcph_host host_;
};

// The back-channel of one request; valid while its handler runs.
class Call {
 public:
  Call(const Host& host, mcph_call call, const Json& params)
      : host_(host), api_(host.api()), call_(call), params_(params) {
    auto meta = params.find("_meta");
    if (meta != params.end() && meta->is_object()) {
      auto run = meta->find("io.mcphost/run");
      if (run != meta->end() && run->is_object()) {
        deferredRun_ = true;
        inTask_ = run->value("inTask", false);
      }
    }
  }

  const Host& host() const { return host_; }
  void progress(double progress, double total = -1, const std::string& message = {}) const {
    api_->progress(call_, progress, total, bytes(message));
  }
  void log(LogLevel level, const std::string& logger, const Json& data) const {
    api_->client_log(call_, static_cast<int32_t>(level), bytes(logger),
                     bytes(data.dump(-1, ' ', false, Json::error_handler_t::replace)));
  }
  // The client's answer to an earlier InputRequired key, or nullptr.
  const Json* inputResponse(const std::string& key) const {
    auto responses = params_.find("inputResponses");
    if (responses == params_.end() || !responses->is_object()) return nullptr;
    auto it = responses->find(key);
    return it == responses->end() ? nullptr : &*it;
  }
  bool hasInputResponses() const {
    auto it = params_.find("inputResponses");
    return it != params_.end() && it->is_object();
  }
  // The state the handler returned with its last InputRequired (host-verified), or null.
  const Json& state() const {
    static const Json kNull;
    auto it = params_.find("requestState");
    return it == params_.end() ? kNull : *it;
  }
  bool clientSupports(const std::string& capability) const {
    return api_->client_supports(call_, bytes(capability)) != 0;
  }
  bool cancelled() const { return api_->is_cancelled(call_) != 0; }
  // fn runs at most once, on any thread, possibly before onCancel returns, and possibly after
  // the handler has returned (until the call completes): capture by value or shared_ptr, never
  // a reference to the handler's locals. Keep it cheap (signal your backend to stop). One hook
  // per call: a second onCancel replaces the first. Every fn given stays alive until the call
  // ends anyway, because a host thread may be about to run the one just replaced.
  void onCancel(std::function<void()> fn) {
    cancelHooks_.push_back(std::make_unique<std::function<void()>>(std::move(fn)));
    api_->on_cancel(
        call_,
        [](void* user) {
          try {  // runs on a host thread: an exception must not cross the C boundary
            (*static_cast<std::function<void()>*>(user))();
          } catch (...) {
          }
        },
        cancelHooks_.back().get());
  }
  // The principal the host authenticated: {"subject","displayName","authMethod","groups","roles",
  // "scopes","tenant","attributes","sourceIp","issuer"} plus "accessToken" on token_exchange
  // instances; null if unavailable.
  Json caller() const {
    std::string text;
    if (detail::copyOut(
            [&](char* b, size_t cap, size_t* len) { return api_->caller_get(call_, b, cap, len); }, text) !=
        MCPH_OK)
      return nullptr;
    Json value = Json::parse(text, nullptr, false);
    return value.is_discarded() ? Json(nullptr) : value;
  }
  int64_t deadlineMs() const { return api_->deadline_ms(call_); }
  // The request's correlation id (the X-Request-Id the client sees), for your own logs; "" if none.
  std::string correlationId() const {
    auto meta = params_.find("_meta");
    if (meta == params_.end() || !meta->is_object()) return {};
    auto id = meta->find("io.mcphost/correlationId");
    return id != meta->end() && id->is_string() ? id->get<std::string>() : std::string();
  }
  bool inTask() const { return inTask_; }
  bool isDeferredRun() const { return deferredRun_; }
  void releaseStream() const { api_->release_stream(call_); }
  const Json& params() const { return params_; }
  mcph_call handle() const { return call_; }

 private:
  const Host& host_;
  const mcph_host_api_v1* api_;
  mcph_call call_;
  const Json& params_;
  bool deferredRun_ = false;
  bool inTask_ = false;
  std::vector<std::unique_ptr<std::function<void()>>> cancelHooks_;
};

// A tool declared with its MCP Tool object (name, description, inputSchema, ...) and handler.
class ToolSet {
 public:
  using Handler = std::function<Outcome(const Json& arguments, Call& call)>;

  ToolSet& add(Json tool, Handler handler) {
    std::string name = tool.value("name", "");
    if (!tool.contains("inputSchema")) tool["inputSchema"] = Json{{"type", "object"}};
    if (tools_.find(name) == tools_.end()) order_.push_back(name);  // re-adding replaces
    tools_[name] = Entry{std::move(tool), std::move(handler)};
    return *this;
  }
  Json list() const {
    Json out = Json::array();
    for (const auto& name : order_) out.push_back(tools_.at(name).tool);
    return out;
  }
  const Handler* find(const std::string& name) const {
    auto it = tools_.find(name);
    return it == tools_.end() ? nullptr : &it->second.handler;
  }

 private:
  struct Entry {
    Json tool;
    Handler handler;
  };
  std::vector<std::string> order_;
  std::map<std::string, Entry> tools_;
};

// Base class of a C++ connector. Override what you offer; the defaults say "not offered".
class Connector {
 public:
  explicit Connector(Host& host) : host_(host) {}
  virtual ~Connector() = default;
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // {"tools","resources","resourceTemplates","prompts"}; by default the declared tools.
  virtual Json describe() { return Json{{"tools", tools_.list()}}; }
  virtual Outcome callTool(const std::string& name, const Json& arguments, Call& call) {
    if (const auto* handler = tools_.find(name)) return (*handler)(arguments, call);
    return Error{MCPH_INVALID_ARGUMENT, "Unknown tool: " + name};
  }
  virtual Outcome readResource(const std::string& uri, Call& /*call*/) {
    return Error{MCPH_NOT_FOUND, "Resource not found: " + uri};
  }
  virtual Outcome getPrompt(const std::string& name, const Json& /*arguments*/, Call& /*call*/) {
    return Error{MCPH_INVALID_ARGUMENT, "Unknown prompt: " + name};
  }
  virtual Outcome complete(const Json& /*ref*/, const Json& /*argument*/, const Json& /*context*/,
                           Call& /*call*/) {
    return Json{{"completion", {{"values", Json::array()}, {"hasMore", false}}}};
  }
  virtual Outcome subscribe(const std::string& /*uri*/) { return Json::object(); }
  virtual Outcome unsubscribe(const std::string& /*uri*/) { return Json::object(); }
  // MCPH_OK, or MCPH_UNAVAILABLE when the backend is down.
  virtual mcph_status health() { return MCPH_OK; }

  Host& host() { return host_; }
  ToolSet& tools() { return tools_; }

  // Used by the generated trampolines, under describeMutex(): the describe() text lives here
  // between calls. One buffer per calling thread, because with MCPH_CONNECTOR_CONCURRENT a
  // describe() on another thread must not overwrite text the host is still copying.
  std::string& describeBuffer() { return describeBuffers_[std::this_thread::get_id()]; }
  std::mutex& describeMutex() { return describeMutex_; }

 private:
  Host& host_;
  ToolSet tools_;
  std::mutex describeMutex_;
  std::map<std::thread::id, std::string> describeBuffers_;
};

namespace detail {

// One instance: the Host wrapper must outlive the connector that references it.
struct Instance {
  std::unique_ptr<Host> host;
  std::unique_ptr<Connector> connector;
};

// The methods handle() accepts; anything else is refused synchronously (see connector.h).
inline bool knownMethod(const std::string& method) {
  return method == "tools/call" || method == "resources/read" || method == "prompts/get" ||
         method == "completion/complete" || method == "resources/subscribe" ||
         method == "resources/unsubscribe";
}

inline const Json& stringField(const Json& params, const char* key) {
  static const Json kEmpty = "";
  auto it = params.find(key);
  return it != params.end() && it->is_string() ? *it : kEmpty;
}

// Routes one request to the virtual it names. Deferred work runs here only on the host's
// second, "run" call; on the first it is announced so the host can decide task or inline.
inline Outcome dispatch(Connector& c, const std::string& method, const Json& params, Call& call) {
  if (method == "tools/call") {
    const Json args = params.contains("arguments") && params["arguments"].is_object() ? params["arguments"]
                                                                                      : Json::object();
    Outcome out = c.callTool(stringField(params, "name").get<std::string>(), args, call);
    if (auto* deferred = std::get_if<Deferred>(&out); deferred != nullptr && call.isDeferredRun()) {
      auto job = std::move(deferred->job);
      return job(call);
    }
    return out;
  }
  if (method == "resources/read") return c.readResource(stringField(params, "uri").get<std::string>(), call);
  if (method == "prompts/get") {
    const Json args = params.contains("arguments") && params["arguments"].is_object() ? params["arguments"]
                                                                                      : Json::object();
    return c.getPrompt(stringField(params, "name").get<std::string>(), args, call);
  }
  if (method == "completion/complete") {
    return c.complete(params.value("ref", Json::object()), params.value("argument", Json::object()),
                      params.value("context", Json::object()), call);
  }
  if (method == "resources/subscribe") return c.subscribe(stringField(params, "uri").get<std::string>());
  if (method == "resources/unsubscribe") return c.unsubscribe(stringField(params, "uri").get<std::string>());
  return Error{MCPH_UNIMPLEMENTED, "method not implemented by this connector: " + method};
}

// Completes c from an Outcome.
inline void finish(const mcph_host_api_v1* api, mcph_call c, Outcome&& out) {
  std::string text;
  mcph_status status = MCPH_OK;
  if (auto* result = std::get_if<Json>(&out)) {
    text = result->dump(-1, ' ', false, Json::error_handler_t::replace);
  } else if (auto* error = std::get_if<Error>(&out)) {
    status = error->status == MCPH_OK ? MCPH_INTERNAL : error->status;
    text = error->message;
  } else if (auto* ask = std::get_if<InputRequired>(&out)) {
    Json r = {{"resultType", "input_required"}, {"inputRequests", std::move(ask->requests)}};
    if (!ask->state.is_null()) r["requestState"] = std::move(ask->state);
    text = r.dump(-1, ' ', false, Json::error_handler_t::replace);
  } else {
    const auto& deferred = std::get<Deferred>(out);
    text = Json{{"resultType", "deferred"}, {"taskRequired", deferred.taskRequired}}.dump();
  }
  api->complete(c, status, bytes(text));
}

template <typename T>
struct Trampolines {
  static mcph_status create(const mcph_host_api_v1* api, mcph_host h, mcph_bytes config_in,
                            mcph_connector* out) noexcept {
    try {
      auto instance = std::make_unique<Instance>();
      instance->host = std::make_unique<Host>(api, h);
      Json config = Json::parse(str(config_in), nullptr, false);
      if (config.is_discarded()) config = Json::object();
      instance->connector = std::make_unique<T>(*instance->host, config);
      *out = reinterpret_cast<mcph_connector>(instance.release());
      return MCPH_OK;
    } catch (const std::exception& e) {
      api->set_error(h, bytes(std::string("create failed: ") + e.what()));
    } catch (...) {
      api->set_error(h, bytes("create failed: unknown exception"));
    }
    return MCPH_INTERNAL;
  }
  static void destroy(mcph_connector self) noexcept {
    try {
      std::unique_ptr<Instance> instance(reinterpret_cast<Instance*>(self));
    } catch (...) {  // a throwing destructor must not cross the boundary
    }
  }
  static mcph_status describe(mcph_connector self, mcph_bytes* out) noexcept {
    auto* instance = reinterpret_cast<Instance*>(self);
    try {
      Connector& c = *instance->connector;
      std::lock_guard lock(c.describeMutex());
      c.describeBuffer() = c.describe().dump(-1, ' ', false, Json::error_handler_t::replace);
      *out = bytes(c.describeBuffer());
      return MCPH_OK;
    } catch (const std::exception& e) {
      instance->host->setError(std::string("describe failed: ") + e.what());
    } catch (...) {
      instance->host->setError("describe failed: unknown exception");
    }
    return MCPH_INTERNAL;
  }
  static mcph_status handle(mcph_connector self, mcph_call c, mcph_bytes method_in,
                            mcph_bytes params_in) noexcept {
    auto* instance = reinterpret_cast<Instance*>(self);
    const mcph_host_api_v1* api = instance->host->api();
    try {
      const std::string method = str(method_in);
      if (!knownMethod(method)) {  // the ABI: refuse, set_error, and do not complete c
        instance->host->setError("method not implemented by this connector: " + method);
        return MCPH_UNIMPLEMENTED;
      }
      Json params = Json::parse(str(params_in), nullptr, false);
      if (!params.is_object()) params = Json::object();
      Call call(*instance->host, c, params);
      Outcome out = dispatch(*instance->connector, method, params, call);
      finish(api, c, std::move(out));
    } catch (const std::exception& e) {
      api->complete(c, MCPH_INTERNAL, bytes(std::string("connector exception: ") + e.what()));
    } catch (...) {
      api->complete(c, MCPH_INTERNAL, bytes("connector exception: unknown"));
    }
    return MCPH_OK;
  }
  static mcph_status health(mcph_connector self) noexcept {
    try {
      return reinterpret_cast<Instance*>(self)->connector->health();
    } catch (...) {
      return MCPH_UNAVAILABLE;
    }
  }
};

template <typename T>
const mcph_connector_api_v1* table(const char* name, const char* version, uint32_t flags,
                                   uint32_t hostMajor) {
  if (hostMajor != MCPH_ABI_MAJOR) return nullptr;
  static const mcph_connector_api_v1 api = {
      sizeof(mcph_connector_api_v1),
      MCPH_ABI_MAJOR,
      MCPH_ABI_MINOR,
      flags,
      name,
      version,
      &Trampolines<T>::create,
      &Trampolines<T>::destroy,
      &Trampolines<T>::describe,
      &Trampolines<T>::handle,
      &Trampolines<T>::health,
  };
  return &api;
}

}  // namespace detail
}  // namespace mcphost::sdk

// Exports the connector class T (constructible from (Host&, const Json& config)).
#define MCPHOST_CONNECTOR(T, NAME, VERSION, FLAGS)                                                       \
  extern "C" MCPH_EXPORT const mcph_connector_api_v1* mcph_connector_entry_v1(uint32_t host_abi_major,   \
                                                                              uint32_t /*host_minor*/) { \
    return ::mcphost::sdk::detail::table<T>(NAME, VERSION, FLAGS, host_abi_major);                       \
  }

#endif  // MCPHOST_CONNECTOR_HPP
