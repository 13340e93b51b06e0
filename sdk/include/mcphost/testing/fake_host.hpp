// mcphost/testing/fake_host.hpp -- an in-process host for unit-testing a connector.
//
// FakeHost implements mcph_host_api_v1 in the test process, so a vendor can drive a connector
// through exactly the C ABI the real host uses (create, describe, handle, complete, the host
// services), without the daemon, a worker process or a sandbox. It is header-only C++17 and
// depends on nothing but connector.h and nlohmann/json (and the platform's dlopen/LoadLibrary
// for createFromLibrary). Link mcphost::sdk_testing.
//
//   mcphost::testing::FakeHost host;
//   host.config = {{"greeting", "Hi"}};
//   host.secrets["token"] = "t0ken";
//   host.caller = {{"subject", "alice"}, {"authMethod", "oauth"}, {"groups", {"hr"}}};
//   host.clientCapabilities = {"elicitation"};
//   REQUIRE(host.create(&mcph_connector_entry_v1).ok());
//   auto r = host.callTool("echo", {{"text", "hi"}});
//   REQUIRE(r.status == MCPH_OK);
//   CHECK(r.text() == "hi");
//   CHECK(host.violations().empty());
//
// What it does like the real host: validates the connector table, snapshots config and secrets
// at create(), serializes calls unless the connector sets MCPH_CONNECTOR_CONCURRENT, waits for
// complete() from any thread (with a timeout), refuses a second complete() with
// MCPH_FAILED_PRECONDITION, runs on_cancel callbacks at most once and never after complete(),
// cancels a call at its deadline, re-runs a "deferred" result with
// _meta {"io.mcphost/run":{"inTask":...}}, and answers input_required rounds from a scripted
// inputResponder (callWithInput; at most 8 rounds). Everything the connector reports is
// recorded: host logs, notifications, set_error text, progress, client logs, secret names looked
// up, and every breach of the connector.h contract it notices (violations()).
//
// What it does not do: check the sha256, the file permissions or the sandbox, validate config
// against the manifest's configSchema, validate results against the MCP schema, or protect
// requestState. Those are the real host's job; test them with the host itself.
#ifndef MCPHOST_TESTING_FAKE_HOST_HPP
#define MCPHOST_TESTING_FAKE_HOST_HPP

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mcphost/connector.h"

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace mcphost::testing {

using Json = nlohmann::json;
using Milliseconds = std::chrono::milliseconds;

// The outcome of create() and friends: expected-like, status plus the error text.
struct CreateResult {
  mcph_status status = MCPH_UNKNOWN;
  std::string error;  // set_error() text of the connector, or what the fake host refused

  bool ok() const { return status == MCPH_OK; }
  explicit operator bool() const { return ok(); }
};

struct DescribeResult {
  mcph_status status = MCPH_UNKNOWN;
  Json descriptor;    // {"tools":[...],...} when OK
  std::string error;  // set_error() text when not OK

  bool ok() const { return status == MCPH_OK; }
  // The Tool object called name, or null.
  Json tool(const std::string& name) const {
    if (!descriptor.is_object() || !descriptor.contains("tools") || !descriptor["tools"].is_array())
      return nullptr;
    for (const auto& t : descriptor["tools"]) {
      if (t.is_object() && t.value("name", "") == name) return t;
    }
    return nullptr;
  }
};

struct HostLog {
  int32_t level = MCPH_LOG_INFO;
  std::string message;
};

struct Notification {
  std::string method;
  Json params;  // null when the connector passed none
};

// Per-call knobs. Defaults: not cancelled, no deadline, FakeHost::timeout to wait, and a
// "deferred" result is followed the way the host follows it.
struct CallOptions {
  bool cancelled = false;                   // cancelled before handle() runs
  int cancelAfterProgress = 0;              // > 0: cancel inside the Nth progress() call
  std::optional<Milliseconds> cancelAfter;  // cancel from another thread this long after start
  std::optional<Milliseconds> deadline;     // deadline_ms() = start + deadline; cancelled then
  std::optional<Milliseconds> timeout;      // how long to wait for complete(); else host.timeout
  bool followDeferred = true;               // re-run a "deferred" result as the host does
  bool inTask = false;                      // _meta["io.mcphost/run"].inTask on that re-run
  std::optional<Json> caller;               // instead of FakeHost::caller for this call
  std::optional<std::set<std::string>> clientCapabilities;  // instead of the host's
};

// What one request produced. For a deferred or multi-round call, status/result/message and
// completions describe the last round; progress, clientLogs and the flags cover all rounds.
struct CallResult {
  mcph_status status = MCPH_UNKNOWN;
  Json result;                      // the parsed result object when status == MCPH_OK
  std::string message;              // status != MCPH_OK: complete()'s text, or set_error() when refused
  std::vector<Json> progress;       // {"progress": p, "total": t (if known), "message": m (if any)}
  std::vector<Json> clientLogs;     // {"level": "info", "logger": l (if any), "data": ...}
  int completions = 0;              // complete() calls for the last round; 1 for a correct connector
  bool refused = false;             // handle() returned non-OK (that is then the status)
  bool timedOut = false;            // complete() did not come in time (status DEADLINE_EXCEEDED)
  bool cancelled = false;           // the fake host cancelled the call
  bool deadlineExceeded = false;    // the deadline passed before complete()
  bool deferred = false;            // the connector answered "deferred" and was re-run
  bool taskRequired = false;        // ... with "taskRequired": true
  bool streamReleased = false;      // release_stream() was called
  int inputRounds = 0;              // callWithInput: input_required rounds answered
  std::vector<Json> inputRequests;  // callWithInput: each round's "inputRequests"

  bool ok() const { return status == MCPH_OK; }
  // "complete" for an ordinary result, else the result's resultType; "" when not OK.
  std::string resultType() const {
    if (status != MCPH_OK || !result.is_object()) return "";
    auto it = result.find("resultType");
    return it != result.end() && it->is_string() ? it->get<std::string>() : "complete";
  }
  bool isError() const { return result.is_object() && result.value("isError", false); }
  // The text of every text content block, joined by newlines.
  std::string text() const {
    std::string out;
    if (!result.is_object() || !result.contains("content") || !result["content"].is_array()) return out;
    for (const auto& block : result["content"]) {
      if (!block.is_object() || block.value("type", "") != "text") continue;
      if (!out.empty()) out += '\n';
      out += block.value("text", "");
    }
    return out;
  }
};

class FakeHost {
 public:
  // Answers one input request: key and {"method": ..., "params": ...} -> the client's result
  // (for elicitation/create e.g. FakeHost::accept({{"name", "Ada"}})).
  using InputResponder = std::function<Json(const std::string& key, const Json& request)>;

  // ---- Set these before create() (config, secrets) or before call() (the rest). ----
  Json config = Json::object();                // the instance config, as the host would pass it
  std::map<std::string, std::string> secrets;  // name -> value
  std::set<std::string> declaredSecrets;       // the manifest's secrets; empty = any name
  Json caller = Json{{"subject", "test-user"},
                     {"authMethod", "none"},
                     {"groups", Json::array()},
                     {"tenant", ""},
                     {"attributes", Json::object()}};
  std::set<std::string> clientCapabilities;  // "elicitation", "sampling", "roots"
  std::atomic<bool> cancelNext{false};       // the next call() starts cancelled (then resets)
  Milliseconds timeout{5000};                // how long call() waits for complete()
  InputResponder inputResponder;             // used by callWithInput()
  int maxInputRounds = 8;                    // like the host: more rounds fail the call
  std::string expectedName;                  // set by loadManifest(); create() checks it

  FakeHost() {
    api_.struct_size = static_cast<uint32_t>(sizeof(mcph_host_api_v1));
    api_.abi_minor = MCPH_ABI_MINOR;
    api_.log = &FakeHost::apiLog;
    api_.set_error = &FakeHost::apiSetError;
    api_.config_get = &FakeHost::apiConfigGet;
    api_.secret_get = &FakeHost::apiSecretGet;
    api_.notify = &FakeHost::apiNotify;
    api_.caller_get = &FakeHost::apiCallerGet;
    api_.deadline_ms = &FakeHost::apiDeadlineMs;
    api_.client_supports = &FakeHost::apiClientSupports;
    api_.progress = &FakeHost::apiProgress;
    api_.client_log = &FakeHost::apiClientLog;
    api_.is_cancelled = &FakeHost::apiIsCancelled;
    api_.on_cancel = &FakeHost::apiOnCancel;
    api_.release_stream = &FakeHost::apiReleaseStream;
    api_.complete = &FakeHost::apiComplete;
  }
  // The instance is destroyed (and a loaded library closed) with the host.
  ~FakeHost() { destroy(); }
  // The connector holds pointers to this object and to the api table inside it.
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // ---- Instance lifecycle ----

  // Calls the entry point with this ABI, checks the table, then create() with `config`.
  CreateResult create(mcph_connector_entry_v1_fn entry) {
    if (entry == nullptr) return {MCPH_INVALID_ARGUMENT, "entry point is null"};
    const mcph_connector_api_v1* table = entry(MCPH_ABI_MAJOR, MCPH_ABI_MINOR);
    if (table == nullptr) {
      return {MCPH_FAILED_PRECONDITION, "the entry point returned NULL for host ABI " +
                                            std::to_string(MCPH_ABI_MAJOR) + "." +
                                            std::to_string(MCPH_ABI_MINOR)};
    }
    return create(table);
  }

  CreateResult create(const mcph_connector_api_v1* table) {
    if (instance_ != nullptr)
      return {MCPH_FAILED_PRECONDITION, "an instance exists already; destroy() it first"};
    if (auto problem = checkTable(table); !problem.empty()) return {MCPH_FAILED_PRECONDITION, problem};
    for (const auto& name : requiredSecrets_) {
      if (secrets.count(name) == 0) {
        return {MCPH_FAILED_PRECONDITION, "the manifest requires secret '" + name + "', which is not set"};
      }
    }
    table_ = table;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      configSnapshot_ = config;
      secretsSnapshot_ = secrets;
      declaredSnapshot_ = declaredSecrets;
    }
    const std::string configText = configSnapshot_.dump();
    takeError();
    mcph_connector instance = nullptr;
    const mcph_status st = table_->create(&api_, host(), bytes(configText), &instance);
    if (st != MCPH_OK) {
      table_ = nullptr;
      return {st, takeError()};
    }
    if (instance == nullptr) addViolation("create() returned MCPH_OK but left *instance_out NULL");
    instance_ = instance;
    return {MCPH_OK, ""};
  }

  // Reads a connector.json (the generated one, next to the library): its name becomes
  // expectedName and its "secrets" the declared (and required) secrets.
  CreateResult loadManifest(const std::string& path) {
    try {
      return readManifest(path);
    } catch (const Json::exception& e) {  // a member of the wrong type
      return {MCPH_INVALID_ARGUMENT, path + ": " + e.what()};
    }
  }

  // Loads a built connector library (RTLD_NOW | RTLD_LOCAL, as the worker does) and creates
  // the instance from its exported entry point. Proves the symbol is exported.
  CreateResult createFromLibrary(const std::string& path) {
    if (instance_ != nullptr)
      return {MCPH_FAILED_PRECONDITION, "an instance exists already; destroy() it first"};
    Library lib;
    std::string error;
    if (!lib.open(path, error)) return {MCPH_NOT_FOUND, error};
    void* symbol = lib.symbol(MCPH_ENTRY_SYMBOL_V1);
    if (symbol == nullptr) {
      return {MCPH_NOT_FOUND, path + " does not export " + std::string(MCPH_ENTRY_SYMBOL_V1) +
                                  " (declare it with MCPH_EXPORT or MCPHOST_CONNECTOR)"};
    }
    mcph_connector_entry_v1_fn entry = nullptr;
    static_assert(sizeof entry == sizeof symbol, "function and object pointers differ in size");
    std::memcpy(&entry, &symbol, sizeof entry);  // dlsym's documented idiom, without a cast
    library_ = std::move(lib);
    return create(entry);
  }

  // A connector folder as installed: dir/connector.json plus the library it names.
  CreateResult createFromDirectory(const std::string& dir) {
    const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    if (auto r = loadManifest(base + "connector.json"); !r.ok()) return r;
    const std::string library = manifest_.value("library", "");
    if (library.empty() || library.front() == '/' || library.find('\\') != std::string::npos ||
        ("/" + library + "/").find("/../") != std::string::npos) {
      return {MCPH_INVALID_ARGUMENT, "manifest \"library\" must be a relative path inside " + dir};
    }
    const std::string sha = manifest_.value("sha256", "");
    if (sha.size() != 64 || sha.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return {MCPH_INVALID_ARGUMENT,
              "manifest \"sha256\" is not a lowercase SHA-256 hex digest (is this the template?)"};
    }
    return createFromLibrary(base + library);
  }

  // Destroys the instance (the destructor does this too). Calls that never completed are
  // abandoned, exactly as the host abandons them.
  void destroy() noexcept {
    if (instance_ != nullptr && table_ != nullptr && table_->destroy != nullptr) table_->destroy(instance_);
    instance_ = nullptr;
    table_ = nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.clear();
    library_ = Library();
  }

  const mcph_connector_api_v1* table() const { return table_; }
  const mcph_host_api_v1* api() const { return &api_; }
  const Json& manifest() const { return manifest_; }  // after loadManifest()

  // ---- Requests ----

  DescribeResult describe() {
    if (instance_ == nullptr) return {MCPH_FAILED_PRECONDITION, nullptr, "no instance; create() first"};
    takeError();
    mcph_bytes out{nullptr, 0};
    mcph_status st;
    {
      auto serial = serialize();
      st = table_->describe(instance_, &out);
    }
    if (st != MCPH_OK) return {st, nullptr, takeError()};
    const std::string text = out.ptr == nullptr ? std::string() : std::string(out.ptr, out.len);
    Json descriptor = Json::parse(text, nullptr, false);
    if (!descriptor.is_object()) {
      addViolation("describe() returned MCPH_OK with text that is not a JSON object");
      return {MCPH_INTERNAL, nullptr, "describe() returned invalid JSON: " + text.substr(0, 200)};
    }
    checkDescriptor(descriptor);
    return {MCPH_OK, std::move(descriptor), ""};
  }

  // check_health(), or MCPH_OK when the connector has none.
  mcph_status checkHealth() {
    if (instance_ == nullptr) return MCPH_FAILED_PRECONDITION;
    if (!connectorHas(offsetof(mcph_connector_api_v1, check_health), sizeof(table_->check_health)) ||
        table_->check_health == nullptr) {
      return MCPH_OK;
    }
    auto serial = serialize();
    return table_->check_health(instance_);
  }

  // One request, as the host sends it: handle(), then wait for complete(). A "deferred"
  // result is re-run with _meta {"io.mcphost/run":{"inTask": options.inTask}} (tools/call).
  CallResult call(const std::string& method, const Json& params = Json::object(),
                  const CallOptions& options = {}) {
    const bool startCancelled = options.cancelled || cancelNext.exchange(false);
    const int64_t deadline = options.deadline ? nowMs() + options.deadline->count() : 0;
    CallResult first = runOnce(method, params, options, startCancelled, deadline);
    if (!options.followDeferred || first.resultType() != "deferred") return first;
    if (method != "tools/call")
      addViolation("a \"deferred\" result is only allowed for tools/call, not " + method);
    CallResult second =
        runOnce(method, withRunMeta(params, options.inTask), options, first.cancelled, deadline);
    if (second.resultType() == "deferred") {  // the host refuses this too
      addViolation("the connector deferred its work twice (the run call answered \"deferred\" again)");
      second = fail(std::move(second), MCPH_INTERNAL, "the connector deferred its work twice");
    }
    second.deferred = true;
    second.taskRequired = first.result.value("taskRequired", false);
    prepend(second.progress, first.progress);
    prepend(second.clientLogs, first.clientLogs);
    second.cancelled = second.cancelled || first.cancelled;
    second.streamReleased = second.streamReleased || first.streamReleased;
    return second;
  }

  CallResult callTool(const std::string& name, const Json& arguments = Json::object(),
                      const CallOptions& options = {}) {
    return call("tools/call", Json{{"name", name}, {"arguments", arguments}}, options);
  }

  // call(), answering input_required rounds with inputResponder the way the host does: the
  // same method and params again, plus "inputResponses" and the connector's "requestState".
  CallResult callWithInput(const std::string& method, const Json& params = Json::object(),
                           const CallOptions& options = {}) {
    Json next = params;
    CallOptions opts = options;
    std::vector<Json> asked;
    std::vector<Json> progress;
    std::vector<Json> logs;
    bool wasDeferred = false;
    bool streamReleased = false;
    for (int round = 0;; ++round) {
      CallResult r = call(method, next, opts);
      opts.cancelled = false;  // a cancellation belongs to the round it was set for
      prepend(r.progress, progress);
      prepend(r.clientLogs, logs);
      wasDeferred = wasDeferred || r.deferred;
      streamReleased = streamReleased || r.streamReleased;
      r.deferred = wasDeferred;
      r.streamReleased = streamReleased;
      r.inputRounds = round;
      r.inputRequests = asked;
      if (r.resultType() != "input_required") return r;
      if (round >= maxInputRounds) {
        return fail(std::move(r), MCPH_RESOURCE_EXHAUSTED,
                    "more than " + std::to_string(maxInputRounds) + " input_required rounds");
      }
      const Json requests = r.result.value("inputRequests", Json());
      if (!requests.is_object() || requests.empty()) {
        addViolation("input_required without a non-empty \"inputRequests\" object");
        return fail(std::move(r), MCPH_INTERNAL, "input_required without inputRequests");
      }
      if (!inputResponder) return r;  // nothing scripted: let the test look at the request
      const auto& caps = opts.clientCapabilities ? *opts.clientCapabilities : clientCapabilities;
      Json responses = Json::object();
      for (const auto& [key, request] : requests.items()) {
        const std::string needs = capabilityFor(request.is_object() ? request.value("method", "") : "");
        if (needs.empty()) {
          addViolation("input request '" + key + "' has an unknown method");
          return fail(std::move(r), MCPH_INVALID_ARGUMENT,
                      "input request '" + key + "' has an unknown method");
        }
        if (caps.count(needs) == 0) {
          addViolation("input request '" + key + "' needs client capability '" + needs +
                       "' that the client did not declare (check clientSupports first)");
          return fail(std::move(r), MCPH_FAILED_PRECONDITION, "the client does not support " + needs);
        }
        responses[key] = inputResponder(key, request);
      }
      asked.push_back(requests);
      progress = r.progress;
      logs = r.clientLogs;
      next = wasDeferred ? withRunMeta(params, opts.inTask) : params;
      next["inputResponses"] = std::move(responses);
      if (r.result.contains("requestState")) next["requestState"] = r.result["requestState"];
    }
  }

  CallResult callToolWithInput(const std::string& name, const Json& arguments = Json::object(),
                               const CallOptions& options = {}) {
    return callWithInput("tools/call", Json{{"name", name}, {"arguments", arguments}}, options);
  }

  // Cancels every call that has not completed yet; callable from any thread (e.g. a test
  // thread while a slow handler runs), but not concurrently with destroy().
  void cancelInFlight() {
    std::vector<CallState*> open;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& c : calls_) open.push_back(c.get());
    }
    for (CallState* c : open) cancel(*c);
  }

  // ---- What the connector did (copies, safe to read while calls run) ----

  std::vector<HostLog> logs() const { return locked(logs_); }
  std::vector<Notification> notifications() const { return locked(notifications_); }
  std::vector<std::string> secretLookups() const { return locked(secretLookups_); }
  // Breaches of the connector.h contract noticed so far; empty for a well-behaved connector.
  std::vector<std::string> violations() const { return locked(violations_); }
  // complete() calls refused with MCPH_FAILED_PRECONDITION because the call had completed.
  int strayCompletions() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return strayCompletions_;
  }
  // True when some host log line contains text.
  bool logged(const std::string& text) const {
    for (const auto& l : logs()) {
      if (l.message.find(text) != std::string::npos) return true;
    }
    return false;
  }

  // Answers for inputResponder (ElicitResult shapes).
  static Json accept(Json content) { return Json{{"action", "accept"}, {"content", std::move(content)}}; }
  static Json decline() { return Json{{"action", "decline"}}; }
  static Json cancelElicitation() { return Json{{"action", "cancel"}}; }

  static const char* levelName(int32_t level) {
    static const char* const kNames[] = {"debug", "info",     "notice", "warning",
                                         "error", "critical", "alert",  "emergency"};
    return level >= 0 && level <= 7 ? kNames[level] : "invalid";
  }

 private:
  struct Callback {
    void (*fn)(void*);
    void* user;
  };

  // One request's host-side state. mcph_call points here; it lives until destroy() so that a
  // late or stray complete() from a connector thread never touches freed memory.
  struct CallState {
    FakeHost* host = nullptr;
    std::mutex m;
    std::condition_variable cv;
    bool completed = false;
    bool abandoned = false;  // handle() refused, or call() stopped waiting
    int completions = 0;
    mcph_status status = MCPH_UNKNOWN;
    std::string text;
    bool cancelled = false;
    std::optional<Callback> callback;  // one per call: another on_cancel replaces it
    bool callbackFired = false;
    std::multiset<std::thread::id> runners;  // threads inside an on_cancel callback now
    std::vector<Json> progress;
    std::vector<Json> clientLogs;
    double lastProgress = 0;
    int cancelAfterProgress = 0;
    bool streamReleased = false;
    int64_t deadlineMs = 0;
    int64_t completedAtMs = 0;
    Json caller;
    std::set<std::string> capabilities;
    Milliseconds callbackWait{5000};
  };

  // RAII over dlopen/LoadLibrary.
  class Library {
   public:
    Library() = default;
    Library(Library&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
    Library& operator=(Library&& o) noexcept {
      if (this != &o) {
        close();
        handle_ = std::exchange(o.handle_, nullptr);
      }
      return *this;
    }
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
    ~Library() { close(); }

    bool open(const std::string& path, std::string& error) {
#if defined(_WIN32)
      handle_ = static_cast<void*>(::LoadLibraryA(path.c_str()));
      if (handle_ == nullptr) error = "cannot load " + path + ": error " + std::to_string(::GetLastError());
#else
      handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle_ == nullptr) {
        const char* e = ::dlerror();
        error = "cannot load " + path + ": " + (e != nullptr ? e : "unknown error");
      }
#endif
      return handle_ != nullptr;
    }
    void* symbol(const char* name) const {
      if (handle_ == nullptr) return nullptr;
#if defined(_WIN32)
      FARPROC p = ::GetProcAddress(static_cast<HMODULE>(handle_), name);
      void* out = nullptr;
      std::memcpy(&out, &p, sizeof out);
      return out;
#else
      return ::dlsym(handle_, name);
#endif
    }

   private:
    void close() noexcept {
      if (handle_ == nullptr) return;
#if defined(_WIN32)
      ::FreeLibrary(static_cast<HMODULE>(handle_));
#else
      ::dlclose(handle_);
#endif
      handle_ = nullptr;
    }
    void* handle_ = nullptr;
  };

  // The subset of the host's manifest checks that matters in-process (no sha256, no file
  // ownership, no configSchema validation).
  CreateResult readManifest(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {MCPH_NOT_FOUND, "cannot read manifest " + path};
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Json m = Json::parse(text, nullptr, false);
    if (!m.is_object()) return {MCPH_INVALID_ARGUMENT, path + ": not a JSON object"};
    if (m.value("manifestVersion", 0) != 1)
      return {MCPH_INVALID_ARGUMENT, path + ": manifestVersion must be 1"};
    if (!m.contains("name") || !m["name"].is_string() || m["name"].get<std::string>().empty()) {
      return {MCPH_INVALID_ARGUMENT, path + ": \"name\" must be a non-empty string"};
    }
    const Json abi = m.value("abi", Json::object());
    if (!abi.is_object() || abi.value("major", 0u) != MCPH_ABI_MAJOR) {
      return {MCPH_FAILED_PRECONDITION, path + ": abi.major must be " + std::to_string(MCPH_ABI_MAJOR)};
    }
    if (abi.value("minMinor", 0u) > MCPH_ABI_MINOR) {
      return {MCPH_FAILED_PRECONDITION, path + ": needs ABI minor " +
                                            std::to_string(abi.value("minMinor", 0u)) + ", this SDK has " +
                                            std::to_string(MCPH_ABI_MINOR)};
    }
    declaredSecrets.clear();
    requiredSecrets_.clear();
    for (const auto& s : m.value("secrets", Json::array())) {
      if (!s.is_object() || !s.contains("name") || !s["name"].is_string()) {
        return {MCPH_INVALID_ARGUMENT, path + ": every secrets[] entry needs a \"name\""};
      }
      declaredSecrets.insert(s["name"].get<std::string>());
      if (s.value("required", true)) requiredSecrets_.insert(s["name"].get<std::string>());  // as the host
    }
    expectedName = m["name"].get<std::string>();
    manifest_ = std::move(m);
    return {MCPH_OK, ""};
  }

  // A scoped lock that exists only when the connector did not opt into concurrency: the host
  // never calls two connector functions at once for such a connector.
  std::unique_lock<std::mutex> serialize() {
    if (table_ != nullptr && (table_->flags & MCPH_CONNECTOR_CONCURRENT) != 0) return {};
    return std::unique_lock<std::mutex>(serial_);
  }

  static mcph_bytes bytes(const std::string& s) {
    return mcph_bytes{s.data(), s.size()};
  }
  static std::string str(mcph_bytes b) {
    return b.ptr == nullptr ? std::string() : std::string(b.ptr, b.len);
  }
  static int64_t nowMs() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
  static void prepend(std::vector<Json>& to, const std::vector<Json>& earlier) {
    to.insert(to.begin(), earlier.begin(), earlier.end());
  }
  static Json withRunMeta(const Json& params, bool inTask) {
    Json p = params.is_object() ? params : Json::object();
    if (!p.contains("_meta") || !p["_meta"].is_object()) p["_meta"] = Json::object();
    p["_meta"]["io.mcphost/run"] = Json{{"inTask", inTask}};
    return p;
  }
  static std::string capabilityFor(const std::string& method) {
    if (method == "elicitation/create") return "elicitation";
    if (method == "sampling/createMessage") return "sampling";
    if (method == "roots/list") return "roots";
    return "";
  }
  static CallResult fail(CallResult r, mcph_status status, std::string message) {
    r.status = status;
    r.message = std::move(message);
    return r;
  }
  // The copy-out protocol of connector.h: buf may be NULL to probe.
  static mcph_status copyOut(const std::string& value, char* buf, size_t cap, size_t* len_out) {
    if (len_out == nullptr) return MCPH_INVALID_ARGUMENT;
    *len_out = value.size();
    if (value.empty()) return MCPH_OK;
    if (buf == nullptr || cap < value.size()) return MCPH_OUT_OF_RANGE;
    std::memcpy(buf, value.data(), value.size());
    return MCPH_OK;
  }

  template <typename T>
  std::vector<T> locked(const std::vector<T>& v) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return v;
  }
  void addViolation(std::string what) {
    std::lock_guard<std::mutex> lock(mutex_);
    violations_.push_back(std::move(what));
  }
  // set_error() text is kept per thread: the status it explains is returned on that thread.
  std::string takeError() {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = errors_.find(std::this_thread::get_id());
    if (it == errors_.end()) return "";
    std::string e = std::move(it->second);
    errors_.erase(it);
    return e;
  }

  mcph_host host() {
    return reinterpret_cast<mcph_host>(this);
  }
  static FakeHost& self(mcph_host h) {
    return *reinterpret_cast<FakeHost*>(h);
  }
  static CallState& state(mcph_call c) {
    return *reinterpret_cast<CallState*>(c);
  }

  bool connectorHas(size_t offset, size_t size) const {
    return table_ != nullptr && table_->struct_size >= offset + size;
  }

  std::string checkTable(const mcph_connector_api_v1* t) const {
    if (t == nullptr) return "connector table is null";
    if (t->struct_size < offsetof(mcph_connector_api_v1, handle) + sizeof(t->handle)) {
      return "connector table struct_size " + std::to_string(t->struct_size) + " is smaller than ABI 1.0's";
    }
    if (t->abi_major != MCPH_ABI_MAJOR) {
      return "connector was built for ABI major " + std::to_string(t->abi_major) + ", host speaks " +
             std::to_string(MCPH_ABI_MAJOR);
    }
    if (t->name == nullptr || t->version == nullptr) return "connector table has no name or version";
    if (t->create == nullptr || t->describe == nullptr || t->handle == nullptr) {
      return "connector table lacks create, describe or handle";
    }
    if (!expectedName.empty() && expectedName != t->name) {
      return "connector calls itself '" + std::string(t->name) + "' but the manifest says '" + expectedName +
             "'";
    }
    return "";
  }

  void checkDescriptor(const Json& d) {
    for (const char* key : {"tools", "resources", "resourceTemplates", "prompts"}) {
      if (d.contains(key) && !d[key].is_array())
        addViolation(std::string("describe(): \"") + key + "\" is not an array");
    }
    if (!d.contains("tools") || !d["tools"].is_array()) return;
    std::set<std::string> seen;
    for (const auto& t : d["tools"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
        addViolation("describe(): a tool without a string \"name\"");
        continue;
      }
      const std::string name = t["name"].get<std::string>();
      if (!seen.insert(name).second) addViolation("describe(): tool '" + name + "' is listed twice");
      if (!t.contains("inputSchema") || !t["inputSchema"].is_object() ||
          t["inputSchema"].value("type", "") != "object") {
        addViolation("describe(): tool '" + name + "' needs an inputSchema of type object");
      }
    }
  }

  CallResult runOnce(const std::string& method, const Json& params, const CallOptions& options,
                     bool startCancelled, int64_t deadline) {
    CallResult r;
    if (instance_ == nullptr) {
      r.status = MCPH_FAILED_PRECONDITION;
      r.message = "no instance; create() first";
      return r;
    }
    auto owned = std::make_unique<CallState>();
    CallState& c = *owned;
    c.host = this;
    c.cancelled = startCancelled;
    c.cancelAfterProgress = options.cancelAfterProgress;
    c.deadlineMs = deadline;
    c.caller = options.caller ? *options.caller : caller;
    c.capabilities = options.clientCapabilities ? *options.clientCapabilities : clientCapabilities;
    const Milliseconds wait = options.timeout ? *options.timeout : timeout;
    c.callbackWait = wait;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      calls_.push_back(std::move(owned));
    }

    // The host's timers: a cancel-after and the deadline fire from another thread, as they
    // would in the real host while the handler is busy.
    std::thread timer;
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> fireAt;
    if (options.cancelAfter) fireAt = start + *options.cancelAfter;
    if (deadline != 0) {
      auto at = start + Milliseconds(deadline - nowMs());
      if (!fireAt || at < *fireAt) fireAt = at;
    }
    if (fireAt) {
      timer = std::thread([this, &c, at = *fireAt] {
        {
          std::unique_lock<std::mutex> lock(c.m);
          if (c.cv.wait_until(lock, at, [&] { return c.completed || c.abandoned; })) return;
        }
        cancel(c);
      });
    }

    const std::string paramsText = params.dump();
    takeError();
    mcph_status st;
    {
      auto serial = serialize();
      st = table_->handle(instance_, reinterpret_cast<mcph_call>(&c), bytes(method), bytes(paramsText));
    }
    if (st != MCPH_OK) {
      r.refused = true;
      r.status = st;
      r.message = takeError();
    }

    {
      std::unique_lock<std::mutex> lock(c.m);
      if (r.refused) {
        if (c.completions > 0) {
          lock.unlock();
          addViolation("handle() returned non-OK for " + method + " but also completed the call");
          lock.lock();
        }
      } else if (!c.cv.wait_for(lock, wait, [&] { return c.completed; })) {
        r.timedOut = true;
        r.status = MCPH_DEADLINE_EXCEEDED;
        r.message =
            "the connector did not complete " + method + " within " + std::to_string(wait.count()) + " ms";
      } else {
        r.status = c.status;
        if (c.status == MCPH_OK) {
          r.result = Json::parse(c.text, nullptr, false);
          if (!r.result.is_object()) {
            r.result = nullptr;
            r.message = c.text;
          }
        } else {
          r.message = c.text;
        }
      }
      r.deadlineExceeded = deadline != 0 && (!c.completed || c.completedAtMs >= deadline);
      c.abandoned = !c.completed;
      if (r.refused) c.abandoned = true;
      r.completions = c.completions;
      r.progress = c.progress;
      r.clientLogs = c.clientLogs;
      r.cancelled = c.cancelled;
      r.streamReleased = c.streamReleased;
    }
    c.cv.notify_all();
    if (timer.joinable()) timer.join();
    if (r.status == MCPH_OK && !r.refused && !r.result.is_object()) {
      addViolation("complete(MCPH_OK) for " + method + " with text that is not a JSON object");
    }
    return r;
  }

  // The host cancels c: the flag first, then the registered callback once, outside the lock
  // (a callback may call back into the host, even complete()).
  void cancel(CallState& c) {
    Callback run{};
    const auto me = std::this_thread::get_id();
    {
      std::lock_guard<std::mutex> lock(c.m);
      if (c.completed || c.cancelled) return;
      c.cancelled = true;
      if (!c.callback) return;
      run = *c.callback;
      c.callback.reset();
      c.callbackFired = true;
      c.runners.insert(me);
    }
    run.fn(run.user);
    {
      std::lock_guard<std::mutex> lock(c.m);
      c.runners.erase(c.runners.find(me));
    }
    c.cv.notify_all();
  }

  // Per-call services used after complete() are a contract breach; say so and refuse.
  bool afterComplete(CallState& c, const char* service) {
    if (!c.completed) return false;
    addViolation(std::string(service) + "() called after complete()");
    return true;
  }

  // ---- mcph_host_api_v1 ----

  static void apiLog(mcph_host h, int32_t level, mcph_bytes message) {
    FakeHost& fh = self(h);
    try {
      if (level < MCPH_LOG_DEBUG || level > MCPH_LOG_EMERGENCY) fh.addViolation("log(): invalid level");
      std::lock_guard<std::mutex> lock(fh.mutex_);
      fh.logs_.push_back(HostLog{level, str(message)});
    } catch (...) {
    }
  }
  static void apiSetError(mcph_host h, mcph_bytes message) {
    FakeHost& fh = self(h);
    try {
      std::lock_guard<std::mutex> lock(fh.mutex_);
      fh.errors_[std::this_thread::get_id()] = str(message);
    } catch (...) {
    }
  }
  static mcph_status apiConfigGet(mcph_host h, mcph_bytes key, char* buf, size_t cap, size_t* len_out) {
    FakeHost& fh = self(h);
    try {
      std::lock_guard<std::mutex> lock(fh.mutex_);
      const std::string pointer = str(key);
      if (pointer.empty()) return copyOut(fh.configSnapshot_.dump(), buf, cap, len_out);
      Json::json_pointer ptr(pointer);
      if (!fh.configSnapshot_.contains(ptr)) return MCPH_NOT_FOUND;
      return copyOut(fh.configSnapshot_.at(ptr).dump(), buf, cap, len_out);
    } catch (const Json::parse_error&) {
      return MCPH_INVALID_ARGUMENT;  // not a JSON pointer ("/a/b")
    } catch (...) {
      return MCPH_NOT_FOUND;
    }
  }
  static mcph_status apiSecretGet(mcph_host h, mcph_bytes name_in, char* buf, size_t cap, size_t* len_out) {
    FakeHost& fh = self(h);
    try {
      std::lock_guard<std::mutex> lock(fh.mutex_);
      const std::string name = str(name_in);
      fh.secretLookups_.push_back(name);
      if (!fh.declaredSnapshot_.empty() && fh.declaredSnapshot_.count(name) == 0)
        return MCPH_PERMISSION_DENIED;
      auto it = fh.secretsSnapshot_.find(name);
      if (it == fh.secretsSnapshot_.end()) return MCPH_NOT_FOUND;
      return copyOut(it->second, buf, cap, len_out);
    } catch (...) {
      return MCPH_INTERNAL;
    }
  }
  static mcph_status apiNotify(mcph_host h, mcph_bytes method_in, mcph_bytes params_in) {
    FakeHost& fh = self(h);
    try {
      const std::string method = str(method_in);
      const std::string text = str(params_in);
      Json params = text.empty() ? Json() : Json::parse(text, nullptr, false);
      const bool listChanged = method == "notifications/tools/list_changed" ||
                               method == "notifications/prompts/list_changed" ||
                               method == "notifications/resources/list_changed";
      const bool updated = method == "notifications/resources/updated";
      if (!listChanged && !updated) {
        fh.addViolation("notify(): unknown method '" + method + "'");
        return MCPH_INVALID_ARGUMENT;
      }
      if (params.is_discarded() ||
          (updated && (!params.is_object() || !params.contains("uri") || !params["uri"].is_string()))) {
        fh.addViolation("notify(" + method + "): params must be JSON" + (updated ? " with a \"uri\"" : ""));
        return MCPH_INVALID_ARGUMENT;
      }
      std::lock_guard<std::mutex> lock(fh.mutex_);
      fh.notifications_.push_back(Notification{method, std::move(params)});
      return MCPH_OK;
    } catch (...) {
      return MCPH_INTERNAL;
    }
  }

  static mcph_status apiCallerGet(mcph_call call, char* buf, size_t cap, size_t* len_out) {
    CallState& c = state(call);
    try {
      std::lock_guard<std::mutex> lock(c.m);
      if (c.host->afterComplete(c, "caller_get")) return MCPH_FAILED_PRECONDITION;
      return copyOut(c.caller.dump(), buf, cap, len_out);
    } catch (...) {
      return MCPH_INTERNAL;
    }
  }
  static int64_t apiDeadlineMs(mcph_call call) {
    CallState& c = state(call);
    std::lock_guard<std::mutex> lock(c.m);
    return c.deadlineMs;
  }
  static int32_t apiClientSupports(mcph_call call, mcph_bytes capability) {
    CallState& c = state(call);
    try {
      std::lock_guard<std::mutex> lock(c.m);
      return c.capabilities.count(str(capability)) != 0 ? 1 : 0;
    } catch (...) {
      return 0;
    }
  }
  static mcph_status apiProgress(mcph_call call, double progress, double total, mcph_bytes message) {
    CallState& c = state(call);
    FakeHost& fh = *c.host;
    bool cancelNow = false;
    try {
      std::unique_lock<std::mutex> lock(c.m);
      if (fh.afterComplete(c, "progress")) return MCPH_FAILED_PRECONDITION;
      if (!c.progress.empty() && !(progress > c.lastProgress)) {
        lock.unlock();
        fh.addViolation("progress() must increase: " + std::to_string(progress) + " after " +
                        std::to_string(c.lastProgress));
        lock.lock();
      }
      Json p = {{"progress", progress}};
      if (total >= 0) p["total"] = total;
      if (message.len > 0) p["message"] = str(message);
      c.progress.push_back(std::move(p));
      c.lastProgress = progress;
      cancelNow = c.cancelAfterProgress > 0 && static_cast<int>(c.progress.size()) == c.cancelAfterProgress;
    } catch (...) {
      return MCPH_INTERNAL;
    }
    if (cancelNow) fh.cancel(c);
    return MCPH_OK;
  }
  static mcph_status apiClientLog(mcph_call call, int32_t level, mcph_bytes logger, mcph_bytes data) {
    CallState& c = state(call);
    FakeHost& fh = *c.host;
    try {
      if (level < MCPH_LOG_DEBUG || level > MCPH_LOG_EMERGENCY)
        fh.addViolation("client_log(): invalid level");
      Json value = Json::parse(str(data), nullptr, false);
      if (value.is_discarded()) {
        fh.addViolation("client_log(): data is not JSON");
        value = str(data);
      }
      Json entry = {{"level", levelName(level)}, {"data", std::move(value)}};
      if (logger.len > 0) entry["logger"] = str(logger);
      std::lock_guard<std::mutex> lock(c.m);
      if (fh.afterComplete(c, "client_log")) return MCPH_FAILED_PRECONDITION;
      c.clientLogs.push_back(std::move(entry));
      return MCPH_OK;
    } catch (...) {
      return MCPH_INTERNAL;
    }
  }
  static int32_t apiIsCancelled(mcph_call call) {
    CallState& c = state(call);
    std::lock_guard<std::mutex> lock(c.m);
    return c.cancelled ? 1 : 0;
  }
  static mcph_status apiOnCancel(mcph_call call, void (*fn)(void* user), void* user) {
    CallState& c = state(call);
    if (fn == nullptr) return MCPH_INVALID_ARGUMENT;
    const auto me = std::this_thread::get_id();
    try {
      {
        std::lock_guard<std::mutex> lock(c.m);
        if (c.host->afterComplete(c, "on_cancel")) return MCPH_FAILED_PRECONDITION;
        if (c.callbackFired) return MCPH_FAILED_PRECONDITION;  // it ran; it runs at most once
        if (!c.cancelled) {
          c.callback = Callback{fn, user};
          return MCPH_OK;
        }
        c.callbackFired = true;  // already cancelled: run it now, before on_cancel returns
        c.runners.insert(me);
      }
      fn(user);
      {
        std::lock_guard<std::mutex> lock(c.m);
        c.runners.erase(c.runners.find(me));
      }
      c.cv.notify_all();
      return MCPH_OK;
    } catch (...) {
      return MCPH_INTERNAL;
    }
  }
  static mcph_status apiReleaseStream(mcph_call call) {
    CallState& c = state(call);
    std::lock_guard<std::mutex> lock(c.m);
    if (c.host->afterComplete(c, "release_stream")) return MCPH_FAILED_PRECONDITION;
    c.streamReleased = true;
    return MCPH_OK;
  }
  static mcph_status apiComplete(mcph_call call, mcph_status status, mcph_bytes result) {
    CallState& c = state(call);
    FakeHost& fh = *c.host;
    const auto me = std::this_thread::get_id();
    try {
      std::unique_lock<std::mutex> lock(c.m);
      ++c.completions;
      if (c.completed) {
        lock.unlock();
        {
          std::lock_guard<std::mutex> hostLock(fh.mutex_);
          ++fh.strayCompletions_;
        }
        fh.addViolation("complete() called a second time for one call");
        return MCPH_FAILED_PRECONDITION;
      }
      c.completed = true;
      c.completedAtMs = nowMs();
      c.status = status;
      c.text = str(result);
      c.callback.reset();  // no callback starts once complete() has begun
      c.cv.notify_all();
      // ...and complete() returns only after a running one has returned (unless it is this
      // thread), because the connector may free the callback's user data right after.
      if (!c.cv.wait_for(lock, c.callbackWait, [&] { return c.runners.count(me) == c.runners.size(); })) {
        lock.unlock();
        fh.addViolation("an on_cancel callback did not return within the call timeout");
      }
      return MCPH_OK;
    } catch (...) {
      return MCPH_INTERNAL;
    }
  }

  mcph_host_api_v1 api_{};
  const mcph_connector_api_v1* table_ = nullptr;
  mcph_connector instance_ = nullptr;
  Library library_;  // closed in destroy(), after the instance
  Json manifest_;
  std::set<std::string> requiredSecrets_;
  std::mutex serial_;

  mutable std::mutex mutex_;  // guards everything below
  Json configSnapshot_ = Json::object();
  std::map<std::string, std::string> secretsSnapshot_;
  std::set<std::string> declaredSnapshot_;
  std::map<std::thread::id, std::string> errors_;
  std::vector<HostLog> logs_;
  std::vector<Notification> notifications_;
  std::vector<std::string> secretLookups_;
  std::vector<std::string> violations_;
  int strayCompletions_ = 0;
  std::vector<std::unique_ptr<CallState>> calls_;
};

}  // namespace mcphost::testing

#endif  // MCPHOST_TESTING_FAKE_HOST_HPP
