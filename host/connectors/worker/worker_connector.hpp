// The supervisor of one native connector instance: a pool of sandboxed mcphost-worker
// processes that each load the connector library, and the Connector seam the router calls.
//
// Lifecycle (DESIGN.md "Process model"): start-up handshake with a timeout; ping; per-call
// deadline -> cancel -> grace period -> kill; a crash fails every in-flight call with an error
// naming the connector, and the worker restarts with exponential backoff; a crash loop
// disables the connector and withdraws its tools (list_changed); workers are recycled after N
// calls or an idle period; shutdown drains, then kills.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "connectors/connector.hpp"
#include "connectors/worker/worker_process.hpp"

namespace mcphost::connectors {

struct SupervisorPolicy {
  std::size_t workers = 1;  // pool size
  std::chrono::milliseconds startTimeout{10000};
  std::chrono::milliseconds callTimeout{60000};
  std::chrono::milliseconds taskTimeout{600000};
  std::chrono::milliseconds cancelGrace{2000};
  std::chrono::milliseconds pingInterval{5000};
  std::chrono::milliseconds backoffInitial{500};
  std::chrono::milliseconds backoffMax{60000};
  int crashLoopCount = 5;  // this many failures within crashLoopWindow disable the connector
  std::chrono::milliseconds crashLoopWindow{60000};
  std::uint64_t recycleAfterCalls = 0;            // 0 = never
  std::chrono::milliseconds recycleAfterIdle{0};  // 0 = never
  std::chrono::milliseconds drainTimeout{2000};
};

struct WorkerSpec {
  std::string connectorId;
  std::string workerBinary;
  std::string manifestName;  // the connector's name (must match the library's)
  std::string library;       // absolute path
  std::string sha256;
  Json config = Json::object();
  std::vector<std::string> declaredSecrets;
  Json secrets = Json::object();  // name -> value; only declared ones
  Json sandbox = Json::object();  // the welcome's sandbox section
  std::size_t threads = 8;        // dispatch threads inside a concurrent worker
  std::vector<std::string> env;   // worker environment (KEY=VALUE)
  SupervisorPolicy policy;
  // An external MCP server on the stdio transport instead of a connector library: the worker
  // binary applies the sandbox and execs `command`, and the host speaks MCP's own lifecycle
  // (initialize, */list, requests) to it, newline-delimited on its stdin/stdout.
  bool mcpStdio = false;
  std::string command;
  std::vector<std::string> args;
};

// A snapshot for /readyz, metrics and logs.
struct SupervisorStatus {
  std::string state;  // "starting", "ready", "restarting", "disabled"
  std::string lastError;
  std::size_t readyWorkers = 0;
  std::uint64_t restarts = 0;
  std::uint64_t crashes = 0;
};

class WorkerConnector final : public Connector, public std::enable_shared_from_this<WorkerConnector> {
 public:
  static std::shared_ptr<WorkerConnector> create(WorkerSpec spec);
  ~WorkerConnector() override;
  WorkerConnector(const WorkerConnector&) = delete;
  WorkerConnector& operator=(const WorkerConnector&) = delete;

  void attach(ConnectorEvents* events) override;
  Expected<Descriptor, RpcError> describe() override;
  Outcome callTool(std::string_view name, const Json& arguments, CallContext& ctx) override;
  Outcome readResource(std::string_view uri, CallContext& ctx) override;
  Outcome getPrompt(std::string_view name, const Json& arguments, CallContext& ctx) override;
  Outcome complete(const Json& ref, const Json& argument, const Json& context, CallContext& ctx) override;
  Outcome subscribe(std::string_view uri) override;
  Outcome unsubscribe(std::string_view uri) override;

  [[nodiscard]] SupervisorStatus status() const;
  // Stops every worker (drain, then kill) and the supervisor thread. Idempotent.
  void shutdown();

 private:
  struct Pending;
  struct Slot;
  explicit WorkerConnector(WorkerSpec spec);

  Outcome request(const std::string& method, Json params, CallContext* ctx, std::chrono::milliseconds timeout,
                  const std::string& label);
  Outcome interpret(const std::string& method, const Json& params, const std::string& label, Pending& call);
  void superviseLoop();
  bool startSlot(std::unique_lock<std::mutex>& lock, Slot& slot);
  void onMessage(Slot& slot, std::uint64_t generation, Json&& message);
  void onExit(Slot& slot, std::uint64_t generation, const std::string& reason);
  void failSlot(Slot& slot, const std::string& why);
  void recordFailure(const std::string& why);
  void removeCgroup(pid_t pid) const;
  // publish: tell the catalog when the lists changed (not during the first start, which the
  // catalog itself is waiting for).
  bool refreshDescriptor(std::unique_lock<std::mutex>& lock, bool publish = true);
  void publishDescriptorChanges(const Json& before, const Json& after);
  Json waitControl(std::unique_lock<std::mutex>& lock, Slot& slot, const std::string& method, Json params,
                   std::string& error);
  bool initializeMcp(std::unique_lock<std::mutex>& lock, Slot& slot, std::string& error);
  Json listAllMcp(std::unique_lock<std::mutex>& lock, Slot& slot, std::string& error);
  void answerServerRequest(Slot& slot, const Json& message);
  void stopGracefully(Slot& slot);
  void publishChange(const std::string& method);
  Slot* pickSlot();
  RpcError unavailableError() const;

  WorkerSpec spec_;
  // Guards events_ and is held while publishing through it, so attach(nullptr) (the catalog
  // going away) waits for a publish in progress. Never taken while holding mutex_.
  std::mutex eventsMutex_;
  ConnectorEvents* events_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::shared_ptr<WorkerProcess>> graveyard_;  // exited processes, destroyed off the I/O thread
  std::deque<std::chrono::steady_clock::time_point> failures_;
  std::deque<std::string> changes_;  // worker notifications for the supervisor to publish
  int backoffStep_ = 0;
  std::chrono::steady_clock::time_point nextStart_{};
  bool disabled_ = false;
  bool permanent_ = false;  // disabled by a failure no restart can fix (library, manifest, ABI)
  bool firstAttemptDone_ = false;
  bool stopping_ = false;
  std::string lastError_;
  Json descriptor_;                           // null until a worker has described the connector
  Json serverCapabilities_ = Json::object();  // stdio MCP servers: from initialize
  std::uint64_t restarts_ = 0;
  std::uint64_t crashes_ = 0;
  std::int64_t nextId_ = 1;
  int refreshesInFlight_ = 0;  // list_changed seen but not yet published (orders them before results)
  std::thread supervisor_;
};

}  // namespace mcphost::connectors
