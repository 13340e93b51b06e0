// WorkerConnector, part three: the MCP lifecycle for external servers on the stdio transport
// (initialize / initialized, paginated */list, answering the server's own requests). Native
// workers use the mcphost channel instead (hello/welcome, mcphost/describe).
#include "connectors/worker/worker_connector.hpp"
#include "connectors/worker/worker_slot.hpp"
#include "observe/log.hpp"

#ifndef MCPHOST_VERSION
#define MCPHOST_VERSION "0.0.0"
#endif

namespace mcphost::connectors {

namespace {
constexpr const char* kClientVersion = "2025-11-25";
constexpr int kMaxPages = 100;
}  // namespace

bool WorkerConnector::initializeMcp(std::unique_lock<std::mutex>& lock, Slot& slot, std::string& error) {
  // No client capabilities: the host does not relay the server's sampling, elicitation or
  // roots requests yet, so it must not claim them.
  Json params = {{"protocolVersion", kClientVersion},
                 {"capabilities", Json::object()},
                 {"clientInfo", {{"name", "mcphost"}, {"version", MCPHOST_VERSION}}}};
  Json result = waitControl(lock, slot, "initialize", std::move(params), error);
  if (result.is_null()) return false;
  if (!result.is_object() || !result.contains("protocolVersion")) {
    error = "initialize returned no protocolVersion";
    return false;
  }
  serverCapabilities_ = result.value("capabilities", Json::object());
  auto process = slot.process;
  lock.unlock();
  process->send(Json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  lock.lock();
  log::info("connector", "MCP server initialized",
            {{"connector", spec_.connectorId},
             {"protocolVersion", result["protocolVersion"]},
             {"server", result.value("serverInfo", Json::object())}});
  return true;
}

Json WorkerConnector::listAllMcp(std::unique_lock<std::mutex>& lock, Slot& slot, std::string& error) {
  Json descriptor = Json::object();
  struct Kind {
    const char* capability;
    const char* method;
    const char* key;
  };
  for (const Kind kind :
       {Kind{"tools", "tools/list", "tools"}, Kind{"resources", "resources/list", "resources"},
        Kind{"resources", "resources/templates/list", "resourceTemplates"},
        Kind{"prompts", "prompts/list", "prompts"}}) {
    Json items = Json::array();
    if (serverCapabilities_.contains(kind.capability)) {
      Json cursor;
      for (int page = 0; page < kMaxPages; ++page) {
        Json params = Json::object();
        if (!cursor.is_null()) params["cursor"] = cursor;
        Json result = waitControl(lock, slot, kind.method, std::move(params), error);
        if (result.is_null()) return nullptr;
        for (auto& item : result.value(kind.key, Json::array())) items.push_back(std::move(item));
        cursor = result.value("nextCursor", Json());
        if (!cursor.is_string() || cursor.get<std::string>().empty()) break;
      }
    }
    descriptor[kind.key] = std::move(items);
  }
  error.clear();
  return descriptor;
}

void WorkerConnector::answerServerRequest(Slot& slot, const Json& message) {
  std::shared_ptr<WorkerProcess> process;
  {
    std::lock_guard lock(mutex_);
    process = slot.process;
  }
  if (!process) return;
  const std::string method = message.value("method", "");
  if (method == "ping") {
    process->send(Json{{"jsonrpc", "2.0"}, {"id", message["id"]}, {"result", Json::object()}});
    return;
  }
  process->send(Json{{"jsonrpc", "2.0"},
                     {"id", message["id"]},
                     {"error",
                      {{"code", protocol::errc::kMethodNotFound},
                       {"message", "mcphost does not relay " + method.substr(0, 64) + " to its clients"}}}});
}

void WorkerConnector::stopGracefully(Slot& slot) {
  if (!slot.process) return;
  if (spec_.mcpStdio) {
    slot.process->closeInput();  // the stdio transport's shutdown: end of input
  } else {
    slot.process->send(Json{{"jsonrpc", "2.0"}, {"method", "mcphost/shutdown"}});
  }
}

}  // namespace mcphost::connectors
