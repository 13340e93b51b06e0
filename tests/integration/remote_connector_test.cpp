// The remote connector end to end: an upstream mcphost serving the conformance fixture,
// federated into a front mcphost over Streamable HTTP (type: remote, prefix: true).
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;
using namespace std::chrono_literals;

namespace {

const char* const kSecret = "remote-test-credential-7f3a";  // must never appear in errors or logs

// A host with exactly the given connectors. The front is not a HostProcess: that one always
// carries its own conformance instance, whose resource URIs would collide with the upstream's
// (the catalog prefixes tool and prompt names, never resource URIs).
class Host {
 public:
  Host(std::uint16_t port, const std::string& connectorsYaml) : dir_(makeTempDir()), port_(port) {
    const std::string config = dir_ + "/mcphost.yaml";
    std::ofstream(config) << "name: remote-it\nserver:\n  listen: 127.0.0.1:" << port_
                          << "\nlogging:\n  level: info\nconnectors:\n"
                          << connectorsYaml;
    process_ = std::make_unique<Subprocess>(
        std::vector<std::string>{MCPHOST_BINARY, "serve", "--config", config}, dir_ + "/host.log", false);
    for (int i = 0; i < 800; ++i) {  // 20s: the front starts a sandboxed worker too
      if (request("GET", "/healthz", {}).status == 200) return;
      std::this_thread::sleep_for(25ms);
    }
    throw std::runtime_error("mcphost did not start; log:\n" + log());
  }
  ~Host() {
    process_.reset();
    std::remove((dir_ + "/host.log").c_str());
    std::remove((dir_ + "/mcphost.yaml").c_str());
    ::rmdir(dir_.c_str());
  }
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  [[nodiscard]] std::string log() const {
    std::ifstream in(dir_ + "/host.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  bool running() { return process_->wait(0ms) == -1; }

  HttpResponse request(const std::string& method, const std::string& path, Headers headers,
                       const std::string& body = "") {
    const int fd = connectLoopback(port_);
    if (fd < 0) return {};
    headers.insert(headers.begin(), {"Host", "127.0.0.1:" + std::to_string(port_)});
    sendAll(fd, rawRequest(method, path, headers, body));
    auto r = readResponse(fd, 30s);
    ::close(fd);
    return r;
  }
  HttpResponse post(const Json& body, const std::string& session = "") {
    Headers h = {{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}};
    if (!session.empty()) {
      h.emplace_back("Mcp-Session-Id", session);
      h.emplace_back("MCP-Protocol-Version", "2025-11-25");
    }
    return request("POST", "/mcp", h, body.dump());
  }
  std::string initialize() {
    auto r = post({{"jsonrpc", "2.0"},
                   {"id", 0},
                   {"method", "initialize"},
                   {"params",
                    {{"protocolVersion", "2025-11-25"},
                     {"capabilities", Json::object()},
                     {"clientInfo", {{"name", "it"}, {"version", "1"}}}}}});
    std::string session = r.header("mcp-session-id");
    if (session.empty())
      throw std::runtime_error("initialize failed: " + std::to_string(r.status) + " " + r.body);
    post({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, session);
    return session;
  }
  int openStream(const std::string& session) {
    const int fd = connectLoopback(port_);
    sendAll(fd, rawRequest("GET", "/mcp",
                           {{"Host", "127.0.0.1:" + std::to_string(port_)},
                            {"Accept", "text/event-stream"},
                            {"Mcp-Session-Id", session},
                            {"MCP-Protocol-Version", "2025-11-25"}},
                           ""));
    return fd;
  }
  Json call(const std::string& session, int id, const std::string& tool,
            const Json& arguments = Json::object(), std::vector<Json>* all = nullptr,
            const Json& meta = Json()) {
    Json params = {{"name", tool}, {"arguments", arguments}};
    if (!meta.is_null()) params["_meta"] = meta;
    auto r = post({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}}, session);
    if (all != nullptr) *all = r.messages();
    return r.lastMessage();
  }
  std::vector<std::string> toolNames(const std::string& session) {
    std::vector<std::string> names;
    auto r = post({{"jsonrpc", "2.0"}, {"id", 900}, {"method", "tools/list"}}, session).lastMessage();
    for (const auto& t : r["result"].value("tools", Json::array())) names.push_back(t.value("name", ""));
    return names;
  }

 private:
  std::string dir_;
  std::uint16_t port_;
  std::unique_ptr<Subprocess> process_;
};

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string mcpUrl(std::uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port) + "/mcp";
}

// The front: the upstream as `up` (prefixed), plus a local native connector of its own.
std::string frontConnectors(const std::string& upstreamUrl) {
  ::setenv("MCPHOST_TEST_REMOTE_TOKEN", kSecret, 1);  // inherited by the front process
  return "  - id: up\n    type: remote\n    url: " + upstreamUrl +
         "\n    prefix: true\n"
         "    headers:\n      Authorization: \"secret:token\"\n"
         "    secrets:\n      token: {env: MCPHOST_TEST_REMOTE_TOKEN}\n"
         "    timeouts: {start: 3s, call: 20s}\n"
         "    restart: {backoff: 200ms}\n"
         "  - id: local\n    manifest: " +
         std::string(MCPHOST_TEST_CONNECTORS_DIR) + "/faulty/connector.json\n";
}

const char* const kConformance = "  - id: conformance\n    connector: conformance\n    prefix: false\n";

}  // namespace

TEST_CASE("a remote connector federates an upstream: tools, resources, prompts, progress and errors") {
  HostProcess upstream;
  Host front(freePort(), frontConnectors(mcpUrl(upstream.port())));
  const auto session = front.initialize();

  const auto names = front.toolNames(session);
  CHECK(has(names, "up__test_simple_text"));
  CHECK(has(names, "local__ok"));
  CHECK_FALSE(has(names, "test_simple_text"));

  auto r = front.call(session, 1, "up__test_simple_text");
  INFO(r.dump());
  CHECK(r["result"]["content"][0]["text"] == "This is a simple text response for testing.");

  std::vector<Json> messages;
  r = front.call(session, 2, "up__test_tool_with_progress", Json::object(), &messages,
                 {{"progressToken", "tok-7"}});
  int progress = 0;
  for (const auto& m : messages) {
    if (m.value("method", "") == "notifications/progress") {
      ++progress;
      CHECK(m["params"]["progressToken"] == "tok-7");  // mapped back from the upstream's own token
    }
  }
  CHECK(progress == 3);
  CHECK(r["result"]["content"][0]["text"] == "Progress tool finished");
  // Without a token the client gets no progress, though the upstream still reports it to us.
  front.call(session, 3, "up__test_tool_with_progress", Json::object(), &messages);
  for (const auto& m : messages) CHECK(m.value("method", "") != "notifications/progress");

  // Resources keep their URIs; prompts are prefixed like tools.
  auto read = front
                  .post({{"jsonrpc", "2.0"},
                         {"id", 4},
                         {"method", "resources/read"},
                         {"params", {{"uri", "test://static-text"}}}},
                        session)
                  .lastMessage();
  INFO(read.dump());
  CHECK(read["result"]["contents"][0]["uri"] == "test://static-text");
  auto prompt = front
                    .post({{"jsonrpc", "2.0"},
                           {"id", 5},
                           {"method", "prompts/get"},
                           {"params", {{"name", "up__test_simple_prompt"}}}},
                          session)
                    .lastMessage();
  INFO(prompt.dump());
  CHECK_FALSE(prompt["result"]["messages"].empty());

  // A tool execution error is a result and passes through unchanged.
  r = front.call(session, 6, "up__test_error_handling");
  CHECK(r["result"].value("isError", false));

  // An upstream JSON-RPC error keeps its code; an internal one names the connector in the message.
  r = front.call(session, 7, "up__protocol_error_job");
  INFO(r.dump());
  CHECK(r["error"]["code"] == -32603);
  CHECK(r["error"]["message"].get<std::string>().rfind("connector 'up': ", 0) == 0);
  CHECK(r["error"]["data"]["connector"] == "up");

  // The remote connector declares no client capabilities: a tool that needs sampling says so.
  r = front.call(session, 8, "up__test_sampling", {{"prompt", "hello"}});
  INFO(r.dump());
  REQUIRE(r.contains("error"));
  CHECK(r["error"]["message"].get<std::string>().find("sampling") != std::string::npos);
  CHECK(r["error"]["data"]["connector"] == "up");

  // The upstream drops the response stream mid-call; the connector resumes it (Last-Event-ID).
  r = front.call(session, 9, "up__test_reconnection");
  INFO(r.dump());
  CHECK(r["result"]["content"][0]["text"] == "Reconnection test completed successfully.");

  CHECK(front.log().find(kSecret) == std::string::npos);
}

TEST_CASE("list changes upstream reach the front's clients") {
  // A real change upstream: a crash-looping connector there is disabled and its tools are
  // withdrawn (the conformance trigger tools announce a change only when the list differs).
  HostProcess upstream("", "", false,
                       "  - id: bad\n    manifest: " + std::string(MCPHOST_TEST_CONNECTORS_DIR) +
                           "/faulty/connector.json\n    restart: {backoff: 50ms, crash_loop_count: 2}\n");
  Host front(freePort(), frontConnectors(mcpUrl(upstream.port())));
  const auto session = front.initialize();
  REQUIRE(has(front.toolNames(session), "up__bad__segfault"));
  const int stream = front.openStream(session);
  for (int i = 0; i < 40; ++i) {
    auto r = front.call(session, 10 + i, "up__bad__segfault");
    if (r["error"].value("message", "").find("disabled") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  const std::string seen = readUntil(stream, "notifications/tools/list_changed", 10s);
  CHECK(seen.find("notifications/tools/list_changed") != std::string::npos);
  ::close(stream);
  const auto names = front.toolNames(session);
  CHECK_FALSE(has(names, "up__bad__segfault"));
  CHECK(has(names, "up__test_simple_text"));
}

TEST_CASE("a stopped upstream fails its calls fast, naming the connector, the front keeps serving") {
  auto upstream = std::make_unique<HostProcess>();
  Host front(freePort(), frontConnectors(mcpUrl(upstream->port())));
  const auto session = front.initialize();
  REQUIRE(front.call(session, 1, "up__test_simple_text").contains("result"));

  upstream->stop();
  const auto started = std::chrono::steady_clock::now();
  auto r = front.call(session, 2, "up__test_simple_text");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  INFO(r.dump());
  REQUIRE(r.contains("error"));
  const std::string message = r["error"]["message"].get<std::string>();
  CHECK(message.find("connector 'up'") != std::string::npos);
  CHECK(message.find(kSecret) == std::string::npos);
  CHECK(elapsed < 3s);

  CHECK(front.running());
  r = front.call(session, 3, "local__ok");
  INFO(r.dump());
  CHECK(r["result"]["content"][0]["text"] == "ok");
  const auto ready = front.request("GET", "/readyz", {});
  CHECK(ready.status == 503);
  CHECK(ready.body.find("connector 'up'") != std::string::npos);
  CHECK(front.log().find(kSecret) == std::string::npos);
}

TEST_CASE("an upstream down at start-up is reported by readyz, and joins the catalog when it comes up") {
  const std::uint16_t upstreamPort = freePort();  // nothing listens there yet
  Host front(freePort(), frontConnectors(mcpUrl(upstreamPort)));
  const auto session = front.initialize();
  auto names = front.toolNames(session);
  CHECK(has(names, "local__ok"));
  CHECK_FALSE(has(names, "up__test_simple_text"));
  auto ready = front.request("GET", "/readyz", {});
  CHECK(ready.status == 503);
  CHECK(ready.body.find("connector 'up'") != std::string::npos);
  auto r = front.call(session, 1, "local__ok");
  CHECK(r["result"]["content"][0]["text"] == "ok");

  const int stream = front.openStream(session);
  Host upstream(upstreamPort, kConformance);
  bool joined = false;
  for (int i = 0; i < 200 && !joined; ++i) {  // backoff from 200ms, doubling
    joined = has(front.toolNames(session), "up__test_simple_text");
    if (!joined) std::this_thread::sleep_for(200ms);
  }
  REQUIRE(joined);
  CHECK(readUntil(stream, "notifications/tools/list_changed", 5s).find("notifications/tools/list_changed") !=
        std::string::npos);
  ::close(stream);
  r = front.call(session, 2, "up__test_simple_text");
  INFO(r.dump());
  CHECK(r["result"]["content"][0]["text"] == "This is a simple text response for testing.");
  ready = front.request("GET", "/readyz", {});
  CHECK(ready.status == 200);
}
