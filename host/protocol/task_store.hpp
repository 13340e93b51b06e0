// Background tasks for the io.modelcontextprotocol/tasks extension (2026-07-28): a tools/call
// whose connector returned Deferred work runs here when the client opted in; the client polls
// tasks/get, answers input with tasks/update and may tasks/cancel. Tasks are process-wide
// (every call of the stateless era is its own HTTP request) and expire after their TTL.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/thread_pool.hpp"
#include "connectors/connector.hpp"

namespace mcphost::protocol {

inline constexpr std::string_view kTasksExtension = "io.modelcontextprotocol/tasks";

struct TaskLimits {
  std::chrono::milliseconds ttl{std::chrono::minutes(10)};
  std::chrono::milliseconds pollInterval{250};
  std::size_t maxTasks = 1000;
  std::size_t maxResultBytes = std::size_t{4} << 20;  // larger results fail the task
  std::size_t workerThreads = 8;
};

class TaskStore {
 public:
  using Job = std::function<connectors::Outcome(connectors::CallContext&)>;

  explicit TaskStore(TaskLimits limits = {});
  ~TaskStore();
  TaskStore(const TaskStore&) = delete;
  TaskStore& operator=(const TaskStore&) = delete;

  // Registers the task (visible to get() at once), starts the job, returns CreateTaskResult.
  Expected<Json, RpcError> start(Job job, Json clientCapabilities, connectors::Caller caller);
  Expected<Json, RpcError> get(const std::string& taskId);
  Expected<Json, RpcError> update(const std::string& taskId, const Json& inputResponses);
  Expected<Json, RpcError> cancel(const std::string& taskId);
  // Only the principal that started a task may see or steer it; for anyone else the task does
  // not exist (the answer is the unknown-task error, so ids cannot be probed).
  [[nodiscard]] std::optional<RpcError> checkOwner(const std::string& taskId, const connectors::Caller& who);

 private:
  struct Task;
  class Context;
  void runRound(const std::shared_ptr<Task>& task);
  std::shared_ptr<Task> find(const std::string& taskId);
  void expire();

  TaskLimits limits_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Task>> tasks_;
  ThreadPool pool_;  // last: joined first on destruction, while tasks_ is still alive
};

}  // namespace mcphost::protocol
