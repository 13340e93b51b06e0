// The supervisor's per-call and per-worker state, shared by worker_connector.cpp (the call
// path) and worker_supervision.cpp (the supervisor thread). Guarded by WorkerConnector::mutex_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "connectors/worker/worker_connector.hpp"

namespace mcphost::connectors {

using Clock = std::chrono::steady_clock;

struct WorkerConnector::Pending {
  std::int64_t id = 0;
  std::string method;
  std::string label;  // "tools/call 'echo'", for messages
  std::string correlationId;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  bool cancelSent = false;
  std::deque<Json> events;  // progress, client log, stream release: applied by the waiting thread
  bool done = false;
  Json result;
  Json error;
  std::string failure;  // the worker died or timed out: the whole message for the caller
  std::condition_variable cv;
};

struct WorkerConnector::Slot {
  // kStopping: killed by the supervisor (deadline, ping), waiting for its exit to be reaped.
  enum class State { kDown, kStarting, kReady, kRetiring, kStopping };
  std::size_t index = 0;
  std::shared_ptr<WorkerProcess> process;
  std::uint64_t generation = 0;
  State state = State::kDown;
  bool helloSeen = false;
  std::string startMethod;  // "mcphost/ready" or "mcphost/startFailed"
  Json startParams;
  std::string exitReason;
  std::map<std::int64_t, std::shared_ptr<Pending>> pending;
  std::uint64_t calls = 0;
  Clock::time_point readyAt{};
  Clock::time_point lastActivity{};
  Clock::time_point pingSentAt{};
  std::int64_t pingId = 0;  // outstanding ping, 0 when none
};

}  // namespace mcphost::connectors
