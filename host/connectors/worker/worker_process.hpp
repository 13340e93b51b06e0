// One worker process and its I/O: spawned with the host channel on fd 3 (a socketpair),
// stdin on /dev/null and stdout/stderr on pipes whose lines become host log lines tagged with
// the connector id, so vendor output can never corrupt the protocol. The worker leads its own
// process group; when it exits the whole group is killed, so a child it forked cannot outlive it.
//
// Everything the worker sends is treated as hostile (the Chromium "rule of two"): frames are
// size-capped before allocation, JSON is parsed with depth and size limits, and any framing
// violation stops the worker.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/expected.hpp"
#include "protocol/json_rpc.hpp"

namespace mcphost::connectors {

using protocol::Json;

struct WorkerLaunch {
  std::string program;            // the mcphost-worker binary, or an external server's command
  std::vector<std::string> args;  // argv[1..]
  std::vector<std::string> env;   // the complete environment, KEY=VALUE
  std::string connectorId;        // for log lines
  bool lineProtocol = false;      // true: newline-delimited JSON on stdin/stdout (MCP stdio servers)
};

class WorkerProcess {
 public:
  struct Callbacks {
    std::function<void(Json&&)> onMessage;                  // each message, on the I/O thread
    std::function<void(const std::string& reason)> onExit;  // once, after the process is reaped
  };

  static Expected<std::unique_ptr<WorkerProcess>, std::string> spawn(const WorkerLaunch& launch,
                                                                     Callbacks callbacks);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Sends one message; false when the worker is gone.
  bool send(const Json& message);
  // Closes the worker's input (the MCP stdio transport's way to ask a server to exit).
  void closeInput();
  // Stops the worker now (SIGKILL to its process group); onExit reports reason.
  void kill(const std::string& reason);
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool exited() const { return exited_; }

 private:
  WorkerProcess() = default;
  void ioLoop();
  void logLine(const char* stream, std::string_view line);
  std::string reap();

  WorkerLaunch launch_;
  Callbacks callbacks_;
  pid_t pid_ = -1;
  int channel_ = -1;  // fd 3 of the worker (or its stdin/stdout for line protocol)
  int channelOut_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex writeMutex_;
  std::mutex killMutex_;
  std::string killReason_;
  std::atomic<bool> exited_{false};
  std::thread io_;
};

// "exited with status 3", "killed by signal 11 (Segmentation fault)".
std::string describeExit(int waitStatus);

}  // namespace mcphost::connectors
