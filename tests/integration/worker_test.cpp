// The worker lifecycle end to end: SDK connectors in sandboxed workers, crash-loop disabling
// with list_changed, recycling, and a pool of workers.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {

std::string faulty(const std::string& more) {
  return "  - id: bad\n    manifest: " + std::string(MCPHOST_TEST_CONNECTORS_DIR) +
         "/faulty/connector.json\n" + more;
}

Json callTool(HostProcess& host, const std::string& session, int id, const std::string& tool) {
  return host
      .post({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", {{"name", tool}}}},
            host.sessionHeaders(session))
      .lastMessage();
}

}  // namespace

TEST_CASE("the conformance fixture answers through its worker, with progress and logs") {
  HostProcess host;
  auto session = host.initialize();
  auto r = host.post({{"jsonrpc", "2.0"},
                      {"id", 2},
                      {"method", "tools/call"},
                      {"params", {{"name", "test_tool_with_progress"}, {"_meta", {{"progressToken", "p"}}}}}},
                     host.sessionHeaders(session));
  int progress = 0;
  for (const auto& m : r.messages()) {
    if (m.value("method", "") == "notifications/progress") ++progress;
  }
  CHECK(progress == 3);
  CHECK(r.lastMessage()["result"]["content"][0]["text"] == "Progress tool finished");
  CHECK(host.log().find("worker ready") != std::string::npos);
}

TEST_CASE("a crash loop disables the connector, withdraws its tools, and readyz and metrics say so") {
  HostProcess host("", "", false, faulty("    restart: {backoff: 50ms, crash_loop_count: 2}\n"));
  auto session = host.initialize();
  const int stream = host.openStream(session);
  auto tools =
      host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}, host.sessionHeaders(session));
  CHECK(tools.body.find("bad__segfault") != std::string::npos);
  for (int i = 0; i < 40; ++i) {
    auto r = callTool(host, session, 10 + i, "bad__segfault");
    if (r["error"].value("message", "").find("disabled") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string notes = readUntil(stream, "notifications/tools/list_changed", std::chrono::seconds(5));
  CHECK(notes.find("notifications/tools/list_changed") != std::string::npos);
  ::close(stream);
  tools = host.post({{"jsonrpc", "2.0"}, {"id", 99}, {"method", "tools/list"}}, host.sessionHeaders(session));
  CHECK(tools.body.find("bad__") == std::string::npos);
  CHECK(tools.body.find("test_simple_text") != std::string::npos);
  const auto ready = host.request("GET", "/readyz", {});
  CHECK(ready.status == 503);
  CHECK(ready.body.find("connector 'bad'") != std::string::npos);
  const auto metrics = host.request("GET", "/metrics", {});
  CHECK(metrics.body.find("mcphost_connector_up{connector=\"bad\",state=\"disabled\"} 0") !=
        std::string::npos);
  CHECK(metrics.body.find("mcphost_connector_up{connector=\"conformance\",state=\"ready\"} 1") !=
        std::string::npos);
  CHECK(host.log().find("connector disabled") != std::string::npos);
}

TEST_CASE("workers are recycled after N calls and a pool serves calls side by side") {
  HostProcess host("", "", false, faulty("    workers: 2\n    recycle: {after_calls: 3}\n"));
  auto session = host.initialize();
  for (int i = 0; i < 12; ++i) {
    auto r = callTool(host, session, 100 + i, "bad__ok");
    INFO(r.dump());
    CHECK(r["result"]["content"][0]["text"] == "ok");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(host.log().find("recycling a worker") != std::string::npos);
  // A hung call occupies one worker; the other keeps answering.
  const int slow = host.startPost(
      {{"jsonrpc", "2.0"}, {"id", 500}, {"method", "tools/call"}, {"params", {{"name", "bad__spin"}}}},
      session);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto quick = callTool(host, session, 501, "bad__ok");
  CHECK(quick["result"]["content"][0]["text"] == "ok");
  ::close(slow);
}

TEST_CASE("SIGTERM drains the workers and leaves none behind") {
  HostProcess host;
  pid_t worker = 0;
  std::istringstream lines(host.log());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("worker ready") == std::string::npos) continue;
    worker = Json::parse(line, nullptr, false).value("pid", 0);
  }
  REQUIRE(worker > 0);
  CHECK(::kill(worker, 0) == 0);
  CHECK(host.stop() == 0);
  CHECK(::kill(worker, 0) != 0);  // gone with the host, not orphaned
}

TEST_CASE("the correlation id the client sees reaches the connector and the host's log of a crash") {
  HostProcess host("", "", false, faulty("    restart: {backoff: 50ms}\n"));
  auto session = host.initialize();
  auto echo = host.post(
      {{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"}, {"params", {{"name", "bad__whoami"}}}},
      host.sessionHeaders(session));
  const std::string id = echo.header("x-request-id");
  REQUIRE_FALSE(id.empty());
  CHECK(echo.lastMessage()["result"]["content"][0]["text"] == "correlation " + id);
  auto crash = host.post(
      {{"jsonrpc", "2.0"}, {"id", 8}, {"method", "tools/call"}, {"params", {{"name", "bad__segfault"}}}},
      host.sessionHeaders(session));
  const std::string crashId = crash.header("x-request-id");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(host.log().find("\"correlation_id\":\"" + crashId + "\"") != std::string::npos);
}
