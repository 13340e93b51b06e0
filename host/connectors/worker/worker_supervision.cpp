// WorkerConnector, part two: the supervisor thread (start-up handshake, deadlines, pings,
// recycling, restart with backoff, crash-loop detection) and the messages workers send.
#include <unistd.h>

#include <algorithm>

#include "connectors/worker/worker_connector.hpp"
#include "connectors/worker/worker_slot.hpp"
#include "observe/log.hpp"
#include "sandbox/sandbox.hpp"

namespace mcphost::connectors {

namespace {

using namespace std::chrono_literals;

constexpr int kChannelProtocol = 1;
constexpr auto kStableUptime = 30s;  // a worker up this long resets the backoff

std::string secondsText(std::chrono::milliseconds ms) {
  return std::to_string(ms.count() / 1000) + "." + std::to_string((ms.count() % 1000) / 100) + "s";
}

Json rpcNotification(const std::string& method, Json params = nullptr) {
  Json m = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

}  // namespace

// Every worker -> host message arrives here, on that worker's I/O thread.
void WorkerConnector::onMessage(Slot& slot, std::uint64_t generation, Json&& message) {
  std::unique_lock lock(mutex_);
  if (slot.generation != generation) return;
  auto violation = [&](const std::string& what) {
    auto process = slot.process;
    lock.unlock();
    log::error("connector", "worker broke the host channel protocol; stopping it",
               {{"connector", spec_.connectorId}, {"problem", what}});
    if (process) process->kill("the worker broke the host channel protocol: " + what);
  };
  const auto method = message.find("method");
  if (method == message.end()) {
    const auto id = message.find("id");
    if (id == message.end() || !id->is_number_integer()) return violation("a response without a valid id");
    auto it = slot.pending.find(id->get<std::int64_t>());
    if (it == slot.pending.end()) return;  // late answer to a call the host already gave up on
    auto call = it->second;
    slot.pending.erase(it);
    if (call->method != "ping") slot.lastActivity = Clock::now();
    if (message.contains("error") && message["error"].is_object()) {
      call->error = std::move(message["error"]);
    } else if (message.contains("result")) {
      call->result = std::move(message["result"]);
    } else {
      call->failure = "connector '" + spec_.connectorId + "' sent a response with neither result nor error";
    }
    call->done = true;
    if (slot.pingId == call->id) slot.pingId = 0;
    call->cv.notify_all();
    return;
  }
  if (!method->is_string()) return violation("a message whose method is not a string");
  if (message.contains("id")) {
    if (!spec_.mcpStdio) return violation("a request (workers may only answer and notify)");
    lock.unlock();
    answerServerRequest(slot, message);  // MCP servers may ask the client things
    return;
  }
  const std::string m = method->get<std::string>();
  Json params = message.value("params", Json::object());
  if (spec_.mcpStdio && m == "notifications/progress") {
    // Our progressToken is the request id we sent.
    params["requestId"] = params.value("progressToken", Json());
  }
  if (m == "mcphost/hello") {
    slot.helloSeen = true;
    slot.startParams = std::move(params);
    changed_.notify_all();
  } else if (m == "mcphost/ready" || m == "mcphost/startFailed") {
    slot.startMethod = m;
    slot.startParams = std::move(params);
    changed_.notify_all();
  } else if (m == "notifications/progress" || m == "notifications/message" || m == "mcphost/releaseStream") {
    const Json requestId = params.value("requestId", Json());
    if (!requestId.is_number_integer()) return;
    auto it = slot.pending.find(requestId.get<std::int64_t>());
    if (it == slot.pending.end()) return;
    it->second->events.push_back(Json{{"method", m}, {"params", std::move(params)}});
    it->second->cv.notify_all();
  } else if (m == "notifications/tools/list_changed" || m == "notifications/prompts/list_changed" ||
             m == "notifications/resources/list_changed") {
    ++refreshesInFlight_;
    changes_.push_back(m);
    changed_.notify_all();
  } else if (m == "notifications/resources/updated") {
    const std::string uri = params.value("uri", "");
    lock.unlock();
    std::lock_guard eventsLock(eventsMutex_);
    if (events_ != nullptr && !uri.empty()) events_->resourceUpdated(uri);
  } else if (m == "mcphost/log") {
    const std::string level = params.value("level", "info");
    const std::string text = params.value("message", "");
    const Json fields = {{"connector", spec_.connectorId}, {"pid", slot.process ? slot.process->pid() : 0}};
    lock.unlock();
    if (level == "debug") {
      log::debug("connector", text, fields);
    } else if (level == "info" || level == "notice") {
      log::info("connector", text, fields);
    } else if (level == "warning") {
      log::warn("connector", text, fields);
    } else {
      log::error("connector", text, fields);
    }
  } else if (spec_.mcpStdio) {
    // MCP servers send notifications we have no use for (e.g. their own logging); log them.
    const Json fields = {
        {"connector", spec_.connectorId}, {"notification", m.substr(0, 64)}, {"params", params}};
    lock.unlock();
    log::info("connector", "notification from the MCP server", fields);
  } else {
    violation("an unknown notification '" + m.substr(0, 64) + "'");
  }
}

void WorkerConnector::onExit(Slot& slot, std::uint64_t generation, const std::string& reason) {
  std::unique_lock lock(mutex_);
  if (slot.generation != generation) return;
  const bool deliberate = slot.state == Slot::State::kRetiring || stopping_;
  const bool wasReady = slot.state == Slot::State::kReady || slot.state == Slot::State::kStopping;
  slot.exitReason = reason;
  Json inFlight = Json::array();  // for the log: which calls the exit cost
  for (auto& [id, call] : slot.pending) {
    if (call->method != "ping")
      inFlight.push_back({{"call", call->label}, {"correlation_id", call->correlationId}});
    if (call->failure.empty()) {
      call->failure = "connector '" + spec_.connectorId + "' failed during " + call->label + ": its worker " +
                      reason + (deliberate || stopping_ ? "" : "; the worker is being restarted");
    }
    call->done = true;
    call->cv.notify_all();
  }
  slot.pending.clear();
  slot.pingId = 0;
  if (slot.process) {
    removeCgroup(slot.process->pid());
    graveyard_.push_back(std::move(slot.process));
  }
  slot.state = Slot::State::kDown;
  if (wasReady && !deliberate) {
    ++crashes_;
    log::error("connector", "worker stopped unexpectedly",
               {{"connector", spec_.connectorId},
                {"reason", reason},
                {"calls", slot.calls},
                {"in_flight", inFlight}});
    recordFailure("its worker " + reason);
  }
  changed_.notify_all();
}

// The worker made itself a cgroup (when limits asked for one); it is empty once the worker is
// reaped, and would otherwise pile up with every restart.
void WorkerConnector::removeCgroup(pid_t pid) const {
  sandbox::Policy policy;
  policy.connectorId = spec_.connectorId;
  policy.memoryBytes = spec_.sandbox.value("memoryBytes", std::uint64_t{0});
  policy.pidsMax = spec_.sandbox.value("pidsMax", std::uint64_t{0});
  const std::string dir = sandbox::cgroupDirFor(policy, pid);
  if (!dir.empty()) ::rmdir(dir.c_str());
}

void WorkerConnector::recordFailure(const std::string& why) {
  const auto now = Clock::now();
  failures_.push_back(now);
  while (!failures_.empty() && now - failures_.front() > spec_.policy.crashLoopWindow) failures_.pop_front();
  lastError_ = why;
  if (static_cast<int>(failures_.size()) >= spec_.policy.crashLoopCount) {
    if (!disabled_) {
      disabled_ = true;
      log::error("connector",
                 "connector disabled: it failed " + std::to_string(failures_.size()) + " times within " +
                     secondsText(spec_.policy.crashLoopWindow) +
                     "; its tools are withdrawn until the host restarts",
                 {{"connector", spec_.connectorId}, {"lastError", why}});
      changes_.push_back("availability");
    }
    return;
  }
  const std::chrono::milliseconds delay = std::min<std::chrono::milliseconds>(
      spec_.policy.backoffMax, spec_.policy.backoffInitial * (std::int64_t{1} << std::min(backoffStep_, 20)));
  ++backoffStep_;
  nextStart_ = now + delay;
  log::warn("connector", "restarting the worker after a delay",
            {{"connector", spec_.connectorId},
             {"delay_ms", static_cast<std::int64_t>(delay.count())},
             {"reason", why}});
}

void WorkerConnector::failSlot(Slot& slot, const std::string& why) {
  for (auto& [id, call] : slot.pending) {
    call->failure = why;
  }
  if (slot.state == Slot::State::kReady) slot.state = Slot::State::kStopping;  // no new calls, no re-kill
  if (slot.process) slot.process->kill(why);
}

// Sends a control request to one worker and waits for its answer (lock held on entry/exit).
Json WorkerConnector::waitControl(std::unique_lock<std::mutex>& lock, Slot& slot, const std::string& method,
                                  Json params, std::string& error) {
  auto call = std::make_shared<Pending>();
  call->id = nextId_++;
  call->method = method;
  call->label = method;
  call->timeout = spec_.policy.startTimeout;
  call->deadline = Clock::now() + spec_.policy.startTimeout;
  slot.pending.emplace(call->id, call);
  auto process = slot.process;
  lock.unlock();
  process->send(
      Json{{"jsonrpc", "2.0"}, {"id", call->id}, {"method", method}, {"params", std::move(params)}});
  lock.lock();
  if (!call->cv.wait_until(lock, call->deadline, [&] { return call->done; })) {
    slot.pending.erase(call->id);
    error = method + " got no answer within " + secondsText(spec_.policy.startTimeout);
    return nullptr;
  }
  if (!call->failure.empty()) {
    error = call->failure;
    return nullptr;
  }
  if (!call->error.is_null()) {
    error = call->error.value("message", std::string("failed"));
    return nullptr;
  }
  return std::move(call->result);
}

bool WorkerConnector::refreshDescriptor(std::unique_lock<std::mutex>& lock, bool publish) {
  Slot* slot = pickSlot();
  if (slot == nullptr) return false;
  std::string error;
  Json described = spec_.mcpStdio ? listAllMcp(lock, *slot, error)
                                  : waitControl(lock, *slot, "mcphost/describe", Json::object(), error);
  if (described.is_null()) {
    log::error("connector", "the connector could not describe itself",
               {{"connector", spec_.connectorId}, {"error", error}});
    lastError_ = "describe failed: " + error;
    return false;
  }
  Json before = std::move(descriptor_);
  descriptor_ = std::move(described);
  if (!publish) return true;
  const Json after = descriptor_;
  lock.unlock();
  publishDescriptorChanges(before, after);
  lock.lock();
  return true;
}

void WorkerConnector::publishDescriptorChanges(const Json& before, const Json& after) {
  std::lock_guard eventsLock(eventsMutex_);
  ConnectorEvents* events = events_;
  if (events == nullptr) return;
  auto part = [](const Json& d, const char* key) {
    return d.is_object() && d.contains(key) ? d[key] : Json();
  };
  if (part(before, "tools") != part(after, "tools") || before.is_null() != after.is_null())
    events->toolsChanged();
  if (part(before, "prompts") != part(after, "prompts")) events->promptsChanged();
  if (part(before, "resources") != part(after, "resources") ||
      part(before, "resourceTemplates") != part(after, "resourceTemplates")) {
    events->resourcesChanged();
  }
}

void WorkerConnector::publishChange(const std::string& method) {
  std::lock_guard eventsLock(eventsMutex_);
  ConnectorEvents* events = events_;
  if (events == nullptr) return;
  if (method == "notifications/tools/list_changed" || method == "availability") events->toolsChanged();
  if (method == "notifications/prompts/list_changed" || method == "availability") events->promptsChanged();
  if (method == "notifications/resources/list_changed" || method == "availability")
    events->resourcesChanged();
}

bool WorkerConnector::startSlot(std::unique_lock<std::mutex>& lock, Slot& slot) {
  const std::uint64_t generation = ++slot.generation;
  slot.state = Slot::State::kStarting;
  slot.helloSeen = false;
  slot.startMethod.clear();
  slot.startParams = nullptr;
  slot.exitReason.clear();
  slot.calls = 0;
  const auto started = Clock::now();
  WorkerLaunch launch{spec_.workerBinary, {}, spec_.env, spec_.connectorId, spec_.mcpStdio};
  if (spec_.mcpStdio) {
    const Json policy = {{"connectorId", spec_.connectorId},
                         {"hostPid", ::getpid()},
                         {"sandbox", spec_.sandbox},
                         {"keepEnv", [&] {
                            Json names = Json::array();
                            for (const auto& e : spec_.env) names.push_back(e.substr(0, e.find('=')));
                            return names;
                          }()}};
    launch.args = {"--exec", policy.dump(), "--", spec_.command};
    launch.args.insert(launch.args.end(), spec_.args.begin(), spec_.args.end());
  }
  WorkerProcess::Callbacks callbacks;
  Slot* raw = &slot;
  callbacks.onMessage = [this, raw, generation](Json&& m) { onMessage(*raw, generation, std::move(m)); };
  callbacks.onExit = [this, raw, generation](const std::string& r) { onExit(*raw, generation, r); };
  lock.unlock();
  auto spawned = WorkerProcess::spawn(launch, std::move(callbacks));
  lock.lock();
  auto fail = [&](const std::string& why, bool permanent) {
    if (slot.process) slot.process->kill(why);
    slot.state = Slot::State::kDown;
    if (permanent) {
      lastError_ = why;
      if (!disabled_) changes_.push_back("availability");
      disabled_ = true;
      permanent_ = true;
      log::error("connector",
                 "connector cannot start; it stays disabled until its library or manifest is fixed",
                 {{"connector", spec_.connectorId}, {"error", why}});
    } else {
      log::error("connector", "worker failed to start", {{"connector", spec_.connectorId}, {"error", why}});
      recordFailure(why);
    }
    firstAttemptDone_ = true;
    changed_.notify_all();
    return false;
  };
  if (!spawned) return fail(spawned.error(), true);
  slot.process = std::shared_ptr<WorkerProcess>(std::move(spawned.value()));
  auto process = slot.process;
  const auto deadline = started + spec_.policy.startTimeout;
  auto gone = [&] { return slot.generation != generation || slot.state != Slot::State::kStarting; };
  if (spec_.mcpStdio) {
    std::string error;
    if (!initializeMcp(lock, slot, error)) {
      if (stopping_) return false;
      return fail("the MCP server did not initialize: " + (gone() ? "it exited: " + slot.exitReason : error),
                  false);
    }
    slot.state = Slot::State::kReady;
    slot.readyAt = Clock::now();
    slot.lastActivity = slot.readyAt;
    if (descriptor_.is_null() && !refreshDescriptor(lock, false)) return fail(lastError_, false);
    log::info("connector", "MCP server ready",
              {{"connector", spec_.connectorId}, {"pid", process->pid()}, {"worker", slot.index}});
    if (slot.generation > 1) ++restarts_;  // this slot ran a worker before
    firstAttemptDone_ = true;
    changed_.notify_all();
    return true;
  }
  changed_.wait_until(lock, deadline, [&] { return slot.helloSeen || gone() || stopping_; });
  if (stopping_) return false;
  if (gone()) return fail("the worker exited during start-up: " + slot.exitReason, false);
  if (!slot.helloSeen) {
    return fail("the worker did not say hello within " + secondsText(spec_.policy.startTimeout), false);
  }
  if (slot.startParams.value("protocol", 0) != kChannelProtocol) {
    return fail("the worker speaks host channel protocol " +
                    slot.startParams.value("protocol", Json(0)).dump() + ", this host speaks " +
                    std::to_string(kChannelProtocol) + "; install matching mcphost packages",
                true);
  }
  Json welcome = {{"protocol", kChannelProtocol},
                  {"connectorId", spec_.connectorId},
                  {"name", spec_.manifestName},
                  {"library", spec_.library},
                  {"sha256", spec_.sha256},
                  {"config", spec_.config},
                  {"declaredSecrets", spec_.declaredSecrets},
                  {"secrets", spec_.secrets},
                  {"threads", spec_.threads},
                  {"hostPid", ::getpid()},
                  {"sandbox", spec_.sandbox}};
  lock.unlock();
  process->send(rpcNotification("mcphost/welcome", std::move(welcome)));
  lock.lock();
  changed_.wait_until(lock, deadline, [&] { return !slot.startMethod.empty() || gone() || stopping_; });
  if (stopping_) return false;
  if (slot.startMethod == "mcphost/startFailed") {
    const std::string stage = slot.startParams.value("stage", "start");
    const bool permanent = stage == "verify" || stage == "entry" || stage == "abi" || stage == "handshake" ||
                           stage == "load" || stage == "sandbox";
    return fail("connector '" + spec_.connectorId + "' failed at " + stage + ": " +
                    slot.startParams.value("message", std::string("no detail")),
                permanent);
  }
  if (gone()) return fail("the worker exited during start-up: " + slot.exitReason, false);
  if (slot.startMethod.empty()) {
    return fail("the worker was not ready within " + secondsText(spec_.policy.startTimeout), false);
  }
  const Json report = slot.startParams.value("sandbox", Json());
  if (report.is_object()) {
    for (const auto& m : report.value("measures", Json::array())) {
      if (m.is_object() && !m.value("enforced", false)) {
        log::warn("sandbox", "sandbox measure not enforced on this machine",
                  {{"connector", spec_.connectorId},
                   {"measure", m.value("name", "")},
                   {"detail", m.value("detail", "")}});
      }
    }
  }
  slot.state = Slot::State::kReady;
  slot.readyAt = Clock::now();
  slot.lastActivity = slot.readyAt;
  if (descriptor_.is_null() && !refreshDescriptor(lock, false)) {
    return fail(lastError_, false);
  }
  log::info(
      "connector", "worker ready",
      {{"connector", spec_.connectorId},
       {"pid", process->pid()},
       {"worker", slot.index},
       {"start_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()}});
  if (slot.generation > 1) ++restarts_;  // this slot ran a worker before
  firstAttemptDone_ = true;
  changed_.notify_all();
  return true;
}

void WorkerConnector::superviseLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!graveyard_.empty()) {
      auto dead = std::move(graveyard_);
      graveyard_.clear();
      lock.unlock();
      dead.clear();  // joins their I/O threads, which may want this lock
      lock.lock();
      continue;
    }
    if (!changes_.empty()) {
      const std::string change = changes_.front();
      changes_.pop_front();
      if (change != "availability") {
        // The connector said its lists changed: describe again, then tell the catalog (and so
        // the clients) even when the lists read the same, as the connector asked.
        refreshDescriptor(lock, false);
        lock.unlock();
        publishChange(change);
        lock.lock();
        --refreshesInFlight_;
      } else {
        lock.unlock();
        publishChange(change);
        lock.lock();
      }
      changed_.notify_all();
      continue;
    }
    const auto now = Clock::now();
    bool acted = false;
    for (auto& slotPtr : slots_) {
      Slot& slot = *slotPtr;
      if (slot.state == Slot::State::kDown && !slot.process && !disabled_ && now >= nextStart_) {
        const bool hadDescriptor = !descriptor_.is_null();
        const bool triedBefore = firstAttemptDone_;
        const bool ok = startSlot(lock, slot);
        // A connector whose earlier attempts failed came up: the catalog, built without it, must
        // learn of it. (The first attempt is awaited by the catalog itself: nothing to announce.)
        if (ok && !hadDescriptor && triedBefore) changes_.push_back("availability");
        acted = true;
        break;
      }
      if (slot.state != Slot::State::kReady || !slot.process) continue;
      if (now - slot.readyAt > kStableUptime) backoffStep_ = 0;
      // Deadlines: cancel at the deadline, kill after the grace period.
      for (auto& [id, call] : slot.pending) {
        if (now >= call->deadline && !call->cancelSent) {
          call->cancelSent = true;
          slot.process->send(rpcNotification("notifications/cancelled",
                                             {{"requestId", id}, {"reason", "deadline exceeded"}}));
        }
        if (now >= call->deadline + spec_.policy.cancelGrace) {
          const std::string why = "connector '" + spec_.connectorId + "' did not finish " + call->label +
                                  " within " + secondsText(call->timeout) + " (plus " +
                                  secondsText(spec_.policy.cancelGrace) +
                                  " after cancelling); its worker was stopped and is being restarted";
          log::error("connector", "call exceeded its deadline; stopping the worker",
                     {{"connector", spec_.connectorId},
                      {"call", call->label},
                      {"correlation_id", call->correlationId}});
          failSlot(slot, why);
          acted = true;
          break;
        }
      }
      if (acted) break;
      // Liveness: a worker's reader answers pings even while every dispatch thread is busy.
      if (spec_.policy.pingInterval.count() > 0 && now - slot.pingSentAt >= spec_.policy.pingInterval) {
        if (slot.pingId != 0) {
          failSlot(slot, "connector '" + spec_.connectorId + "' worker did not answer a ping within " +
                             secondsText(spec_.policy.pingInterval));
          acted = true;
          break;
        }
        slot.pingId = nextId_++;
        slot.pingSentAt = now;
        auto ping = std::make_shared<Pending>();
        ping->id = slot.pingId;
        ping->method = "ping";
        ping->label = "ping";
        ping->deadline = now + spec_.policy.pingInterval * 3;
        ping->cancelSent = true;  // never cancelled; the ping check above handles it
        slot.pending.emplace(ping->id, ping);
        slot.process->send(Json{{"jsonrpc", "2.0"}, {"id", slot.pingId}, {"method", "ping"}});
      }
      // Recycling bounds leaks: after N calls, or after an idle period.
      const bool busy = std::any_of(slot.pending.begin(), slot.pending.end(),
                                    [](const auto& p) { return p.second->method != "ping"; });
      const bool tooManyCalls =
          spec_.policy.recycleAfterCalls > 0 && slot.calls >= spec_.policy.recycleAfterCalls;
      const bool idleTooLong = spec_.policy.recycleAfterIdle.count() > 0 &&
                               now - slot.lastActivity >= spec_.policy.recycleAfterIdle;
      if (!busy && (tooManyCalls || idleTooLong)) {
        log::info("connector", "recycling a worker",
                  {{"connector", spec_.connectorId}, {"calls", slot.calls}, {"idle", idleTooLong}});
        slot.state = Slot::State::kRetiring;
        stopGracefully(slot);
        acted = true;
      }
    }
    if (!acted) changed_.wait_for(lock, 50ms);
  }
}

}  // namespace mcphost::connectors
