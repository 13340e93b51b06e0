// Operations basics: health, readiness, metrics, logs, the CLI and graceful shutdown.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

TEST_CASE("healthz, readyz and metrics") {
  HostProcess host;
  CHECK(host.request("GET", "/healthz", {}).status == 200);
  auto ready = host.request("GET", "/readyz", {});
  CHECK(ready.status == 200);
  CHECK(Json::parse(ready.body)["ready"] == true);
  auto session = host.initialize();
  host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}, host.sessionHeaders(session));
  auto metrics = host.request("GET", "/metrics", {});
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("mcphost_requests_total{method=\"tools/list\",status=\"ok\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("mcphost_request_duration_seconds_bucket{method=\"tools/list\"") !=
        std::string::npos);
  CHECK(metrics.body.find("mcphost_active_sessions 1") != std::string::npos);
}

TEST_CASE("every log line is JSON and requests carry a correlation id") {
  HostProcess host;
  auto r = host.post({{"jsonrpc", "2.0"},
                      {"id", 0},
                      {"method", "initialize"},
                      {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}}}});
  const std::string correlation = r.header("x-request-id");
  CHECK(correlation.size() == 16);
  host.stop();
  std::istringstream log(host.log());
  std::string line;
  bool found = false;
  while (std::getline(log, line)) {
    if (line.empty() || line[0] != '{') continue;  // the ready banner is for humans
    auto j = Json::parse(line, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    if (j.value("correlation_id", "") == correlation && j.value("mcp_method", "") == "initialize")
      found = true;
  }
  CHECK(found);
}

TEST_CASE("SIGTERM drains and exits 0") {
  HostProcess host;
  auto session = host.initialize();
  CHECK(host.stop(SIGTERM) == 0);
  CHECK(host.log().find("stopping") != std::string::npos);
}

TEST_CASE("check-config names file, line and key, and version prints") {
  auto dir = makeTempDir();
  const std::string bad = dir + "/bad.yaml";
  std::ofstream(bad) << "server:\n  listen: 127.0.0.1:1\n  bogus: 1\nconnectors:\n  - {id: a, connector: "
                        "conformance}\n";
  Subprocess check({MCPHOST_BINARY, "check-config", bad}, dir + "/err.txt", false);
  CHECK(check.wait() == 2);
  std::ifstream err(dir + "/err.txt");
  std::string text((std::istreambuf_iterator<char>(err)), {});
  CHECK(text.find(bad + ":3: server.bogus: unknown key") != std::string::npos);

  Subprocess good({MCPHOST_BINARY, "check-config", MCPHOST_SOURCE_DIR "/config/demo.yaml"}, dir + "/ok.txt",
                  false);
  CHECK(good.wait() == 0);
  Subprocess version({MCPHOST_BINARY, "version"}, dir + "/v.txt", false);
  CHECK(version.wait() == 0);
  Subprocess noConfig({MCPHOST_BINARY, "serve"}, dir + "/n.txt", false);
  CHECK(noConfig.wait() == 2);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a port in use is a clear start-up error") {
  HostProcess first;
  auto dir = makeTempDir();
  Subprocess second({MCPHOST_BINARY, "serve", "--config", first.configPath()}, dir + "/err.txt", false);
  CHECK(second.wait() == 1);
  std::ifstream err(dir + "/err.txt");
  std::string text((std::istreambuf_iterator<char>(err)), {});
  CHECK(text.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())) != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("SIGTERM lets a stateless call in flight finish before exiting") {
  HostProcess host;
  const int fd = connectLoopback(host.port());
  Json call = {{"jsonrpc", "2.0"},
               {"id", 11},
               {"method", "tools/call"},
               {"params",
                {{"name", "slow_compute"},
                 {"arguments", {{"seconds", 1}}},
                 {"_meta",
                  {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                   {"io.modelcontextprotocol/clientCapabilities", Json::object()}}}}}};
  sendAll(fd, rawRequest("POST", "/mcp",
                         {{"Host", host.hostHeader()},
                          {"Content-Type", "application/json"},
                          {"Accept", "application/json, text/event-stream"},
                          {"MCP-Protocol-Version", "2026-07-28"},
                          {"Mcp-Method", "tools/call"},
                          {"Mcp-Name", "slow_compute"}},
                         call.dump()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(host.pidForTests(), SIGTERM);
  auto r = readResponse(fd);
  ::close(fd);
  CHECK(r.status == 200);
  CHECK(r.lastMessage()["result"]["content"][0]["text"] == "slow_compute finished after 1s");
  CHECK(host.stop() == 0);
}

TEST_CASE("SIGTERM lets a session-era call in flight deliver its result") {
  HostProcess host;
  auto session = host.initialize();
  Json call = {{"jsonrpc", "2.0"},
               {"id", 12},
               {"method", "tools/call"},
               {"params", {{"name", "slow_compute"}, {"arguments", {{"seconds", 1}}}}}};
  const int fd = host.startPost(call, session);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(host.pidForTests(), SIGTERM);
  auto r = readResponse(fd);
  ::close(fd);
  CHECK(r.lastMessage()["result"]["content"][0]["text"] == "slow_compute finished after 1s");
  CHECK(host.stop() == 0);
}
