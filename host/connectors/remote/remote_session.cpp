// The remote connector's session lifecycle: initialize and re-initialize, the catalog lists,
// the background reconnect with backoff, and the upstream's GET stream.
#include <algorithm>
#include <utility>
#include <vector>

#include "connectors/remote/remote_connector.hpp"
#include "connectors/remote/remote_detail.hpp"
#include "observe/log.hpp"
#include "protocol/versions.hpp"

#ifndef MCPHOST_VERSION
#define MCPHOST_VERSION "0.0.0"
#endif

namespace mcphost::connectors {

namespace {

using namespace std::chrono_literals;
using remote::Clock;
using remote::Failure;
using remote::flag;
using remote::kAll;
using remote::kPrompts;
using remote::kRecheck;
using remote::kResources;
using remote::kTools;
using remote::seconds;
using remote::str;
namespace errc = protocol::errc;

bool wantsStream(const Json& caps) {
  return flag(caps, "tools", "listChanged") || flag(caps, "prompts", "listChanged") ||
         flag(caps, "resources", "listChanged") || flag(caps, "resources", "subscribe");
}

}  // namespace

Expected<RemoteConnector::Session, RpcError> RemoteConnector::acquireSession(const std::string& label) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return unexpected(failure(label, "the host is shutting down"));
    // Calls fail fast while the upstream is down; the maintainer reconnects in the background.
    if (state_ == State::kInvalid || state_ == State::kReconnecting) return unexpected(unavailable(label));
    if (session_) return *session_;
  }
  return reinitialize(0, label);
}

Expected<RemoteConnector::Session, RpcError> RemoteConnector::reinitialize(std::uint64_t failedGeneration,
                                                                           const std::string& label) {
  std::lock_guard init(initMutex_);
  {
    std::lock_guard lock(mutex_);
    if (session_ && session_->generation != failedGeneration) return *session_;  // another caller did it
    if (stopping_) return unexpected(failure(label, "the host is shutting down"));
  }
  Expected<Session, RpcError> fresh = unexpected(failure(label, "initialize did not run"));
  try {
    fresh = initialize();
  } catch (const std::exception& e) {  // e.g. no thread for the exchange: an error, never a crash
    fresh = unexpected(failure(label, std::string("initialize failed: ") + e.what()));
  }
  std::lock_guard lock(mutex_);
  if (!fresh) return unexpected(fresh.error());
  session_ = fresh.value();
  state_ = State::kReady;
  lastError_.clear();
  // An upstream that dropped our session may have restarted with other lists.
  if (failedGeneration != 0) pendingRelist_ |= kRecheck;
  resubscribe_ = !subscriptions_.empty();
  if (listening_ != nullptr) listening_->abort();  // that GET stream belongs to the old session
  changed_.notify_all();
  return *session_;
}

Expected<RemoteConnector::Session, RpcError> RemoteConnector::initialize() {
  if (!http_) {
    std::lock_guard lock(mutex_);
    return unexpected(unavailable("initialize"));
  }
  const std::int64_t id = nextId_++;
  // No client capabilities: upstream tools that need elicitation, sampling or roots are not
  // supported through a remote connector yet (they answer with an error).
  Json params = {{"protocolVersion", std::string(protocol::kSessionVersions.front())},
                 {"capabilities", Json::object()},
                 {"clientInfo", {{"name", "mcphost"}, {"version", MCPHOST_VERSION}}}};
  remote::Exchange ex;
  ex.message = protocol::makeRequest(id, "initialize", std::move(params));
  ex.id = id;
  ex.deadline = Clock::now() + spec_.startTimeout;
  const Waited waited = await(ex, nullptr, Json());  // initialize is never cancelled (MCP)
  auto result = interpret(ex, waited, "initialize", spec_.startTimeout);
  if (!result) return unexpected(result.error());
  const std::string version = str(*result, "protocolVersion");
  if (!protocol::isSessionVersion(version)) {
    return unexpected(
        failure("initialize", "the upstream answered protocol revision '" + version +
                                  "'; a remote connector speaks 2025-11-25, 2025-06-18 and 2025-03-26"));
  }
  Session s;
  s.id = ex.sessionHeader;
  s.version = version;
  if (result->contains("capabilities") && (*result)["capabilities"].is_object())
    s.capabilities = (*result)["capabilities"];
  {
    std::lock_guard lock(mutex_);
    s.generation = ++generations_;
  }
  if (!post(s, protocol::makeNotification("notifications/initialized", nullptr))) {
    return unexpected(failure("initialize", url_ + " did not accept notifications/initialized"));
  }
  const Json info = result->value("serverInfo", Json::object());
  log::info("remote", "connected to the upstream MCP server",
            {{"connector", spec_.connectorId},
             {"url", url_},
             {"protocol_version", version},
             {"server", str(info, "name")},
             {"server_version", str(info, "version")}});
  return s;
}

bool RemoteConnector::post(const Session& session, Json message, const std::string& method,
                           std::chrono::milliseconds timeout) {
  if (!http_) return false;
  remote::Exchange ex;
  ex.method = method;
  ex.message = std::move(message);
  ex.sessionId = session.id;
  ex.protocolVersion = session.version;
  ex.deadline = Clock::now() + std::min(spec_.callTimeout, timeout);
  http_->perform(ex);
  return ex.failure == Failure::kNone && ex.status >= 200 && ex.status < 300;
}

void RemoteConnector::onServerMessage(Json&& message, const Session& session) {
  const std::string method = str(message, "method");
  if (message.contains("id")) {
    // A server-to-client request. We declared no client capabilities, so ping is all we answer.
    const Json reply = method == "ping"
                           ? protocol::makeResponse(message["id"], Json::object())
                           : protocol::makeErrorResponse(
                                 message["id"], RpcError{errc::kMethodNotFound,
                                                         "mcphost's remote connector '" + spec_.connectorId +
                                                             "' does not offer " + method +
                                                             " (it declares no client capabilities)",
                                                         nullptr});
    post(session, reply);
    return;
  }
  int kind = 0;
  if (method == "notifications/tools/list_changed") kind = kTools;
  if (method == "notifications/prompts/list_changed") kind = kPrompts;
  if (method == "notifications/resources/list_changed") kind = kResources;
  if (kind != 0) {
    std::lock_guard lock(mutex_);
    pendingRelist_ |= kind;
    changed_.notify_all();
    return;
  }
  if (method == "notifications/resources/updated") {
    const std::string uri = str(message.value("params", Json::object()), "uri");
    // Held across the call: attach(nullptr) (the catalog going away) waits for it.
    std::lock_guard eventsLock(eventsMutex_);
    if (events_ != nullptr && !uri.empty()) events_->resourceUpdated(uri);
  }
  // Progress and log messages outside a request (the GET stream) belong to no call: dropped.
}

RemoteConnector::Result RemoteConnector::listAll(const char* method, const char* key,
                                                 const char* capability) {
  Json items = Json::array();
  if (!supports(capability)) return items;  // a missing capability is just an empty list
  Json cursor;
  for (std::size_t page = 0; page < spec_.maxListPages; ++page) {
    Json params = Json::object();
    if (cursor.is_string()) params["cursor"] = cursor;
    auto result = roundTrip(method, params, nullptr, spec_.callTimeout, method);
    if (!result) {
      if (result.error().code == errc::kMethodNotFound) return Json::array();
      return result;
    }
    if (result->contains(key) && (*result)[key].is_array()) {
      for (auto& item : (*result)[key]) items.push_back(std::move(item));
    }
    cursor = result->value("nextCursor", Json());
    if (!cursor.is_string() || cursor.get_ref<const std::string&>().empty()) return items;
  }
  log::warn("remote", "the upstream list has more pages than allowed; the rest is left out",
            {{"connector", spec_.connectorId}, {"method", method}, {"pages", spec_.maxListPages}});
  return items;
}

bool RemoteConnector::refresh(int notified, bool publish) {
  struct List {
    const char* method;
    const char* key;
    const char* capability;
  };
  static constexpr List kLists[] = {{"tools/list", "tools", "tools"},
                                    {"resources/list", "resources", "resources"},
                                    {"resources/templates/list", "resourceTemplates", "resources"},
                                    {"prompts/list", "prompts", "prompts"}};
  Json after = Json::object();
  for (const auto& list : kLists) {
    auto items = listAll(list.method, list.key, list.capability);
    if (!items) {
      if (stopping_) return false;
      bool described = false;
      {
        std::lock_guard lock(mutex_);
        described = !descriptor_.is_null();
      }
      // Never described: keep retrying in the background. Described: keep serving what we have.
      if (!described) {
        markUnavailable(reasonOf(items.error().message));
      } else {
        log::warn("remote", "cannot re-list the upstream; keeping the previous lists",
                  {{"connector", spec_.connectorId}, {"error", items.error().message}});
      }
      return false;
    }
    after[list.key] = std::move(items.value());
  }
  Json before;
  {
    std::lock_guard lock(mutex_);
    before = std::exchange(descriptor_, after);
  }
  if (publish) publishChanges(before, after, notified);
  return true;
}

void RemoteConnector::publishChanges(const Json& before, const Json& after, int notified) {
  // Held across the calls: attach(nullptr) (the catalog going away) waits for them.
  std::lock_guard eventsLock(eventsMutex_);
  ConnectorEvents* events = events_;
  if (events == nullptr) return;
  auto part = [](const Json& d, const char* key) {
    return d.is_object() && d.contains(key) ? d[key] : Json();
  };
  auto differs = [&](const char* key) { return before.is_null() || part(before, key) != part(after, key); };
  if ((notified & kTools) != 0 || differs("tools")) events->toolsChanged();
  if ((notified & kPrompts) != 0 || differs("prompts")) events->promptsChanged();
  if ((notified & kResources) != 0 || differs("resources") || differs("resourceTemplates")) {
    events->resourcesChanged();
  }
}

void RemoteConnector::markUnavailable(const std::string& why) {
  std::lock_guard lock(mutex_);
  lastError_ = why;
  if (stopping_ || state_ == State::kInvalid) return;
  session_.reset();  // the next attempt starts a new session
  if (listening_ != nullptr) listening_->abort();
  if (state_ != State::kReconnecting) {
    state_ = State::kReconnecting;
    nextAttempt_ = Clock::now() + backoff_;
    log::warn(
        "remote", "the upstream is unavailable; retrying in the background",
        {{"connector", spec_.connectorId}, {"url", url_}, {"error", why}, {"retry_in", seconds(backoff_)}});
  }
  changed_.notify_all();
}

void RemoteConnector::maintain() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (state_ == State::kReconnecting) {
      if (Clock::now() < nextAttempt_) {
        changed_.wait_until(lock, nextAttempt_);
        continue;
      }
      lock.unlock();
      auto session = reinitialize(0, "initialize");
      const bool ok = session && refresh(0, /*publish=*/true);
      lock.lock();
      if (ok) {
        backoff_ = spec_.backoffInitial;
        log::info("remote", "the upstream is back; its items are in the catalog again",
                  {{"connector", spec_.connectorId}, {"url", url_}});
      } else if (!stopping_) {
        if (!session && state_ == State::kReconnecting) lastError_ = reasonOf(session.error().message);
        backoff_ = std::min(backoff_ * 2, spec_.backoffMax);
        nextAttempt_ = Clock::now() + backoff_;
      }
      continue;
    }
    if (state_ == State::kReady && (pendingRelist_ != 0 || resubscribe_)) {
      const int kinds = std::exchange(pendingRelist_, 0);
      const bool resubscribe = std::exchange(resubscribe_, false);
      const std::vector<std::string> uris(subscriptions_.begin(), subscriptions_.end());
      lock.unlock();
      for (const auto& uri : uris) {
        if (!resubscribe) break;
        const std::string label = "resources/subscribe '" + uri + "'";
        if (auto r = roundTrip("resources/subscribe", Json{{"uri", uri}}, nullptr, spec_.callTimeout, label);
            !r) {
          log::warn("remote", "cannot renew a resource subscription upstream",
                    {{"connector", spec_.connectorId}, {"error", r.error().message}});
        }
      }
      if (kinds != 0) refresh(kinds & kAll, /*publish=*/true);
      lock.lock();
      continue;
    }
    changed_.wait(lock);
  }
}

void RemoteConnector::listen() {
  auto delay = 500ms;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (state_ != State::kReady || !session_ || streamUnsupported_ || !wantsStream(session_->capabilities)) {
      changed_.wait(lock);
      continue;
    }
    const Session session = *session_;
    remote::Exchange ex;
    ex.method = "GET";
    ex.sessionId = session.id;
    ex.protocolVersion = session.version;
    // Reopened when it runs out, so a silently dead peer is noticed within that time.
    ex.deadline = Clock::now() + 10min;
    ex.onMessage = [this, session](Json&& m) { onServerMessage(std::move(m), session); };
    listening_ = &ex;
    lock.unlock();
    const auto opened = Clock::now();
    http_->perform(ex);
    lock.lock();
    listening_ = nullptr;
    if (stopping_) break;
    if (ex.status == 405) {
      streamUnsupported_ = true;
      log::info("remote", "the upstream offers no GET stream; its list changes are seen on reconnect only",
                {{"connector", spec_.connectorId}, {"url", url_}});
      continue;
    }
    if (ex.failure == Failure::kConnect) {
      lock.unlock();
      markUnavailable("cannot reach " + url_ + ": " + ex.error);
      lock.lock();
      continue;
    }
    if (ex.status == 404 && !session.id.empty() && session_ && session_->generation == session.generation) {
      lock.unlock();
      reinitialize(session.generation, "GET stream");
      lock.lock();
      continue;
    }
    // It ended (the server closed it, or we aborted it for a new session): reopen, backing off
    // while it keeps ending at once.
    delay =
        Clock::now() - opened > 5s ? 500ms : std::min<std::chrono::milliseconds>(delay * 2, spec_.backoffMax);
    changed_.wait_for(lock, delay, [this] { return stopping_.load(); });
  }
}

}  // namespace mcphost::connectors
