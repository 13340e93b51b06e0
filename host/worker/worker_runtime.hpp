// The worker's side of the host channel: implements the C ABI's host-services table by
// forwarding over the fd-3 socket, and dispatches the host's requests to the connector.
//
// Call handles handed to the connector are serial numbers, never pointers: a connector that
// completes a call twice, or uses a handle after completing it, hits an unknown number and
// gets MCPH_FAILED_PRECONDITION instead of touching freed memory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/frame_channel.hpp"
#include "mcphost/connector.h"

namespace mcphost::worker {

using Json = nlohmann::json;

struct InstanceSettings {
  std::string connectorId;
  Json config = Json::object();
  std::vector<std::string> declaredSecrets;
  std::map<std::string, std::string> secrets;  // wiped at exit
  std::size_t threads = 8;                     // dispatch threads for concurrent connectors
};

class WorkerRuntime {
 public:
  WorkerRuntime(FrameSocket& socket, InstanceSettings settings);
  ~WorkerRuntime();
  WorkerRuntime(const WorkerRuntime&) = delete;
  WorkerRuntime& operator=(const WorkerRuntime&) = delete;

  static const mcph_host_api_v1* hostApi();
  mcph_host hostHandle() { return reinterpret_cast<mcph_host>(this); }

  // Detail the connector attached with set_error() on this thread (cleared by the read).
  static std::string takeError();

  // Serves requests until the host says shutdown or the channel closes. Returns the exit code.
  int serve(const mcph_connector_api_v1* api, mcph_connector instance);

  void notify(const std::string& method, Json params);
  void hostLog(int32_t level, std::string message);

 private:
  struct LiveCall;
  struct Task {
    Json id;
    std::string method;
    Json params;
  };

  void dispatchLoop();
  void run(Task task);
  void respond(const Json& id, Json result);
  void respondError(const Json& id, mcph_status status, const std::string& message);
  void onCancelled(const Json& requestId);
  void runHook(LiveCall& call);
  std::shared_ptr<LiveCall> findCall(mcph_call c);

  // Host-services trampolines (the C table points at these).
  static void apiLog(mcph_host h, int32_t level, mcph_bytes message);
  static void apiSetError(mcph_host h, mcph_bytes message);
  static mcph_status apiConfigGet(mcph_host h, mcph_bytes key, char* buf, size_t cap, size_t* len);
  static mcph_status apiSecretGet(mcph_host h, mcph_bytes name, char* buf, size_t cap, size_t* len);
  static mcph_status apiNotify(mcph_host h, mcph_bytes method, mcph_bytes params);
  static mcph_status apiCallerGet(mcph_call c, char* buf, size_t cap, size_t* len);
  static int64_t apiDeadline(mcph_call c);
  static int32_t apiClientSupports(mcph_call c, mcph_bytes capability);
  static mcph_status apiProgress(mcph_call c, double progress, double total, mcph_bytes message);
  static mcph_status apiClientLog(mcph_call c, int32_t level, mcph_bytes logger, mcph_bytes data);
  static int32_t apiIsCancelled(mcph_call c);
  static mcph_status apiOnCancel(mcph_call c, void (*fn)(void*), void* user);
  static mcph_status apiReleaseStream(mcph_call c);
  static mcph_status apiComplete(mcph_call c, mcph_status status, mcph_bytes result);

  FrameSocket& socket_;
  InstanceSettings settings_;
  const mcph_connector_api_v1* api_ = nullptr;
  mcph_connector instance_ = nullptr;

  std::mutex callsMutex_;
  std::map<std::uint64_t, std::shared_ptr<LiveCall>> calls_;
  std::uint64_t nextCall_ = 1;

  std::mutex queueMutex_;
  std::condition_variable queueReady_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mcphost::worker
