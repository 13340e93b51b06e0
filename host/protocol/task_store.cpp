#include "protocol/task_store.hpp"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Timestamp.h>

#include "common/crypto.hpp"
#include "observe/log.hpp"

namespace mcphost::protocol {

namespace {

std::string isoNow() {
  return Poco::DateTimeFormatter::format(Poco::Timestamp(), Poco::DateTimeFormat::ISO8601_FRAC_FORMAT);
}

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

RpcError unknownTask(const std::string& id) {
  return RpcError{errc::kInvalidParams, "Unknown taskId: " + id, {{"taskId", id}}};
}

}  // namespace

struct TaskStore::Task {
  std::string id;
  Job job;
  Json clientCapabilities;
  connectors::Caller caller;
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point expiresAt;
  // Guarded by TaskStore::mutex_.
  std::string status = "working";
  std::string createdAt;
  std::string lastUpdatedAt;
  std::string statusMessage;
  Json outstanding = Json::object();  // inputRequests still unanswered
  Json responses = Json::object();    // every answer so far
  Json state;
  Json result;
  Json error;
};

class TaskStore::Context final : public connectors::CallContext {
 public:
  Context(const Task& task, Json responses, Json state)
      : task_(task), responses_(std::move(responses)), state_(std::move(state)) {}
  void progress(double, std::optional<double>, std::string_view) override {}
  void log(connectors::LogLevel, std::string_view, const Json&) override {}
  [[nodiscard]] const Json* inputResponse(std::string_view key) const override {
    auto it = responses_.find(key);
    return it == responses_.end() ? nullptr : &*it;
  }
  [[nodiscard]] bool hasInputResponses() const override { return !responses_.empty(); }
  [[nodiscard]] const Json& inputResponses() const override { return responses_; }
  [[nodiscard]] const Json& state() const override { return state_; }
  [[nodiscard]] bool clientSupports(std::string_view capability) const override {
    return task_.clientCapabilities.is_object() && task_.clientCapabilities.contains(capability);
  }
  [[nodiscard]] bool cancelled() const override { return task_.cancelled.load(); }
  [[nodiscard]] const connectors::Caller& caller() const override { return task_.caller; }
  [[nodiscard]] bool inTask() const override { return true; }
  void closeResponseStream() override {}

 private:
  const Task& task_;
  Json responses_;
  Json state_;
};

TaskStore::TaskStore(TaskLimits limits) : limits_(limits), pool_(limits.workerThreads, limits.maxTasks) {}

TaskStore::~TaskStore() {
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, t] : tasks_) t->cancelled = true;
  }
  pool_.stop();
}

void TaskStore::expire() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (now >= it->second->expiresAt) {
      it->second->cancelled = true;
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
}

Expected<Json, RpcError> TaskStore::start(Job job, Json clientCapabilities, connectors::Caller caller) {
  auto task = std::make_shared<Task>();
  task->id = randomToken(16);
  task->job = std::move(job);
  task->clientCapabilities = std::move(clientCapabilities);
  task->caller = std::move(caller);
  task->expiresAt = std::chrono::steady_clock::now() + limits_.ttl;
  task->createdAt = task->lastUpdatedAt = isoNow();
  {
    std::lock_guard lock(mutex_);
    expire();
    if (tasks_.size() >= limits_.maxTasks) {
      return unexpected(RpcError{
          errc::kInternalError,
          "too many tasks in flight (" + std::to_string(limits_.maxTasks) + "); retry later", nullptr});
    }
    tasks_.emplace(task->id, task);
  }
  if (!pool_.submit([this, task] { runRound(task); })) {
    std::lock_guard lock(mutex_);
    tasks_.erase(task->id);
    return unexpected(RpcError{errc::kInternalError, "the task queue is full; retry later", nullptr});
  }
  return Json{{"resultType", "task"},
              {"taskId", task->id},
              {"status", "working"},
              {"createdAt", task->createdAt},
              {"lastUpdatedAt", task->lastUpdatedAt},
              {"ttlMs", limits_.ttl.count()},
              {"pollIntervalMs", limits_.pollInterval.count()},
              {"content", Json::array()}};
}

void TaskStore::runRound(const std::shared_ptr<Task>& task) {
  Json responses;
  Json state;
  {
    std::lock_guard lock(mutex_);
    if (terminal(task->status)) return;
    responses = task->responses;
    state = task->state;
  }
  Context ctx(*task, std::move(responses), std::move(state));
  connectors::Outcome outcome = RpcError{errc::kInternalError, "task produced no outcome", nullptr};
  try {
    outcome = task->job(ctx);
  } catch (const std::exception& e) {
    outcome = RpcError{errc::kInternalError, std::string("connector failure: ") + e.what(), nullptr};
  }
  std::lock_guard lock(mutex_);
  if (terminal(task->status)) return;  // cancelled while running: the outcome is dropped
  task->lastUpdatedAt = isoNow();
  if (auto* result = outcome.get_if<Json>();
      result != nullptr && result->dump().size() > limits_.maxResultBytes) {
    task->status = "failed";
    task->error = RpcError{errc::kInternalError,
                           "the task result exceeds " + std::to_string(limits_.maxResultBytes) +
                               " bytes; tasks keep results in memory until they expire",
                           nullptr}
                      .toJson();
  } else if (result != nullptr) {
    task->status = "completed";
    task->result = std::move(*result);
    if (!task->result.contains("content")) task->result["content"] = Json::array();
  } else if (auto* error = outcome.get_if<RpcError>()) {
    task->status = "failed";
    task->error = error->toJson();
    task->statusMessage = "Task failed: " + error->message;
  } else if (auto* ask = outcome.get_if<connectors::InputRequired>()) {
    Json outstanding = Json::object();
    for (auto it = ask->requests.begin(); it != ask->requests.end(); ++it) {
      if (!task->responses.contains(it.key())) outstanding[it.key()] = it.value();
    }
    if (outstanding.empty()) {
      // The job re-asked for answers it already has (e.g. an unusable answer): ask again.
      outstanding = ask->requests;
      for (auto it = ask->requests.begin(); it != ask->requests.end(); ++it) task->responses.erase(it.key());
    }
    task->outstanding = std::move(outstanding);
    task->state = std::move(ask->state);
    task->status = "input_required";
  } else {
    task->status = "failed";
    task->error = RpcError{errc::kInternalError, "a task cannot defer work again", nullptr}.toJson();
  }
  task->job = task->status == "input_required" ? task->job : Job{};
}

std::shared_ptr<TaskStore::Task> TaskStore::find(const std::string& taskId) {
  expire();
  auto it = tasks_.find(taskId);
  return it == tasks_.end() ? nullptr : it->second;
}

std::optional<RpcError> TaskStore::checkOwner(const std::string& taskId, const connectors::Caller& who) {
  std::lock_guard lock(mutex_);
  auto task = find(taskId);
  if (!task) return std::nullopt;  // get/update/cancel answer unknown themselves
  if (task->caller.subject == who.subject && task->caller.authMethod == who.authMethod) return std::nullopt;
  return unknownTask(taskId);
}

Expected<Json, RpcError> TaskStore::get(const std::string& taskId) {
  std::lock_guard lock(mutex_);
  auto task = find(taskId);
  if (!task) return unexpected(unknownTask(taskId));
  Json out = {{"taskId", task->id},           {"status", task->status},
              {"createdAt", task->createdAt}, {"lastUpdatedAt", task->lastUpdatedAt},
              {"ttlMs", limits_.ttl.count()}, {"pollIntervalMs", limits_.pollInterval.count()}};
  if (!task->statusMessage.empty()) out["statusMessage"] = task->statusMessage;
  if (task->status == "input_required") out["inputRequests"] = task->outstanding;
  if (task->status == "completed") out["result"] = task->result;
  if (task->status == "failed") out["error"] = task->error;
  return out;
}

Expected<Json, RpcError> TaskStore::update(const std::string& taskId, const Json& inputResponses) {
  std::shared_ptr<Task> resume;
  {
    std::lock_guard lock(mutex_);
    auto task = find(taskId);
    if (!task) return unexpected(unknownTask(taskId));
    if (inputResponses.is_object()) {
      for (auto it = inputResponses.begin(); it != inputResponses.end(); ++it) {
        if (!task->outstanding.contains(it.key())) continue;  // unknown or already answered
        task->responses[it.key()] = it.value();
        task->outstanding.erase(it.key());
      }
    }
    if (task->status == "input_required" && task->outstanding.empty()) {
      task->status = "working";
      task->lastUpdatedAt = isoNow();
      resume = task;
    }
  }
  if (resume && !pool_.submit([this, resume] { runRound(resume); })) {
    std::lock_guard lock(mutex_);
    resume->status = "failed";
    resume->error = RpcError{errc::kInternalError, "the task queue is full", nullptr}.toJson();
  }
  return Json::object();
}

Expected<Json, RpcError> TaskStore::cancel(const std::string& taskId) {
  std::lock_guard lock(mutex_);
  auto task = find(taskId);
  if (!task) return unexpected(unknownTask(taskId));
  if (!terminal(task->status)) {
    task->status = "cancelled";
    task->lastUpdatedAt = isoNow();
    task->outstanding = Json::object();
    task->cancelled = true;
  }
  return Json::object();
}

}  // namespace mcphost::protocol
