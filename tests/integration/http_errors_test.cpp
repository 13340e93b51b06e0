// Every kind of bad input the HTTP transport can get, each answered with a clear status and
// JSON-RPC error, and the host still serving afterwards.
#include <catch2/catch.hpp>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {
const Headers kMcp = {{"Content-Type", "application/json"},
                      {"Accept", "application/json, text/event-stream"}};

Json statelessCall(const std::string& tool) {
  return {{"jsonrpc", "2.0"},
          {"id", 5},
          {"method", "tools/call"},
          {"params",
           {{"name", tool},
            {"_meta",
             {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
              {"io.modelcontextprotocol/clientCapabilities", Json::object()}}}}}};
}
}  // namespace

TEST_CASE("malformed JSON is 400 with -32700") {
  HostProcess host;
  auto r = host.request("POST", "/mcp", kMcp, "{\"jsonrpc\": \"2.0\", ");
  CHECK(r.status == 400);
  CHECK(r.lastMessage()["error"]["code"] == -32700);
}

TEST_CASE("an invalid JSON-RPC request is 400 with -32600") {
  HostProcess host;
  auto r = host.post({{"jsonrpc", "2.0"}, {"id", 1}});
  CHECK(r.status == 400);
  CHECK(r.lastMessage()["error"]["code"] == -32600);
  auto batch = host.post(Json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}}));
  CHECK(batch.status == 400);
  CHECK(batch.lastMessage()["error"]["code"] == -32600);
}

TEST_CASE("unknown method is -32601 and bad params -32602 on a session") {
  HostProcess host;
  auto session = host.initialize();
  auto unknown =
      host.post({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "no/such"}}, host.sessionHeaders(session));
  CHECK(unknown.status == 200);
  CHECK(unknown.lastMessage()["error"]["code"] == -32601);
  auto bad = host.post({{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"}, {"params", {{"name", 7}}}},
                       host.sessionHeaders(session));
  CHECK(bad.lastMessage()["error"]["code"] == -32602);
}

TEST_CASE("a body over the cap is 413") {
  HostProcess host("  max_body_bytes: 1024\n");
  auto r = host.request("POST", "/mcp", kMcp, std::string(4096, ' '));
  CHECK(r.status == 413);
  CHECK(r.body.find("max_body_bytes") != std::string::npos);
  CHECK(host.request("GET", "/healthz", {}).status == 200);
}

TEST_CASE("a wrong Accept header is 406") {
  HostProcess host;
  auto r = host.request("POST", "/mcp", {{"Content-Type", "application/json"}, {"Accept", "text/html"}},
                        R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  CHECK(r.status == 406);
  auto get = host.request("GET", "/mcp", {{"Accept", "application/json"}});
  CHECK(get.status == 406);
}

TEST_CASE("unknown, deleted and expired sessions are 404") {
  HostProcess host("  session_idle_timeout: 1s\n");
  auto unknown =
      host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, host.sessionHeaders("feedface"));
  CHECK(unknown.status == 404);
  auto missing = host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}});
  CHECK(missing.status == 400);

  auto deleted = host.initialize();
  CHECK(host.request("DELETE", "/mcp", host.sessionHeaders(deleted)).status == 200);
  CHECK(host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, host.sessionHeaders(deleted)).status ==
        404);

  auto expiring = host.initialize();
  CHECK(
      host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, host.sessionHeaders(expiring)).status ==
      200);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  CHECK(
      host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, host.sessionHeaders(expiring)).status ==
      404);
}

TEST_CASE("an unsupported protocol version is 400 with the supported list") {
  HostProcess host;
  auto session = host.initialize();
  auto r = host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}},
                     {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "1999-01-01"}});
  CHECK(r.status == 400);
  CHECK(r.lastMessage()["error"]["data"]["supported"].size() == 3);
  auto r2 = host.post(statelessCall("test_simple_text"), {{"MCP-Protocol-Version", "2099-01-01"},
                                                          {"Mcp-Method", "tools/call"},
                                                          {"Mcp-Name", "test_simple_text"}});
  CHECK(r2.status == 400);
  CHECK(r2.lastMessage()["error"]["code"] == -32020);  // header disagrees with _meta
}

TEST_CASE("initialize negotiates the version") {
  HostProcess host;
  auto r = host.post({{"jsonrpc", "2.0"},
                      {"id", 0},
                      {"method", "initialize"},
                      {"params", {{"protocolVersion", "2025-06-18"}, {"capabilities", Json::object()}}}});
  CHECK(r.lastMessage()["result"]["protocolVersion"] == "2025-06-18");
  auto old = host.post({{"jsonrpc", "2.0"},
                        {"id", 0},
                        {"method", "initialize"},
                        {"params", {{"protocolVersion", "2024-01-01"}, {"capabilities", Json::object()}}}});
  CHECK(old.lastMessage()["result"]["protocolVersion"] == "2025-11-25");
}

TEST_CASE("a header/body mismatch is 400 with -32020 and echoes the id") {
  HostProcess host;
  auto r = host.post(statelessCall("test_simple_text"), {{"MCP-Protocol-Version", "2026-07-28"},
                                                         {"Mcp-Method", "tools/list"},
                                                         {"Mcp-Name", "test_simple_text"}});
  CHECK(r.status == 400);
  CHECK(r.lastMessage()["error"]["code"] == -32020);
  CHECK(r.lastMessage()["id"] == 5);
  auto ok = host.post(statelessCall("test_simple_text"), {{"MCP-Protocol-Version", "2026-07-28"},
                                                          {"Mcp-Method", "tools/call"},
                                                          {"Mcp-Name", "test_simple_text"}});
  CHECK(ok.status == 200);
  CHECK(ok.lastMessage()["result"]["resultType"] == "complete");
}

TEST_CASE("a foreign Origin or Host is 403 (DNS rebinding)") {
  HostProcess host;
  Headers evilOrigin = kMcp;
  evilOrigin.emplace_back("Origin", "http://evil.example");
  CHECK(host.request("POST", "/mcp", evilOrigin, R"({"jsonrpc":"2.0","id":1,"method":"ping"})").status ==
        403);
  Headers evilHost = kMcp;
  evilHost.emplace_back("Host", "evil.example:80");
  CHECK(host.request("POST", "/mcp", evilHost, R"({"jsonrpc":"2.0","id":1,"method":"ping"})").status == 403);
  Headers goodOrigin = kMcp;
  goodOrigin.emplace_back("Origin", "http://localhost:1234");
  auto ok = host.request(
      "POST", "/mcp", goodOrigin,
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}})");
  CHECK(ok.status == 200);
}

TEST_CASE("other methods and paths get 405 and 404") {
  HostProcess host;
  auto put = host.request("PUT", "/mcp", kMcp, "{}");
  CHECK(put.status == 405);
  CHECK(put.header("allow").find("POST") != std::string::npos);
  CHECK(host.request("GET", "/nope", {}).status == 404);
}

TEST_CASE("ambiguous or malformed body framing is refused (no request smuggling)") {
  HostProcess host;
  auto raw = [&](const std::string& request) {
    const int fd = connectLoopback(host.port());
    sendAll(fd, request);
    auto r = readResponse(fd);
    ::close(fd);
    return r.status;
  };
  const std::string h =
      "POST /mcp HTTP/1.1\r\nHost: " + host.hostHeader() +
      "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
  CHECK(raw(h + "Content-Length: abc\r\n\r\n") == 400);
  CHECK(raw(h + "Content-Length: 99999999999999999999\r\n\r\n") == 400);
  CHECK(raw(h + "Content-Length: 0\r\nContent-Length: 40\r\n\r\n") == 400);
  CHECK(raw(h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == 501);
  CHECK(raw(h + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n") == 400);
  CHECK(raw("GET /%zz HTTP/1.1\r\nHost: " + host.hostHeader() + "\r\n\r\n") == 400);
  CHECK(raw(h + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n") == 400);
  CHECK(raw("POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json, "
            "text/event-stream\r\nContent-Length: 2\r\n\r\n{}") == 403);  // no Host at all
  CHECK(host.request("GET", "/healthz", {}).status == 200);
}
