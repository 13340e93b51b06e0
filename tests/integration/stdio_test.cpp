// The stdio transport: only protocol on stdout, logs on stderr, both eras, clean exit on EOF.
#include <catch2/catch.hpp>
#include <fstream>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {
std::string demoConfig() {
  return std::string(MCPHOST_SOURCE_DIR) + "/config/demo.yaml";
}

Json readMessage(Subprocess& p) {
  auto line = p.readLine();
  REQUIRE(line);
  auto j = Json::parse(*line, nullptr, false);
  INFO(*line);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}
}  // namespace

TEST_CASE("stdio serves a session, progress, a stateless request and bad input") {
  auto dir = makeTempDir();
  Subprocess p({MCPHOST_BINARY, "serve", "--stdio", "--config", demoConfig()}, dir + "/stderr.txt", true);
  p.writeLine(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
  auto init = readMessage(p);
  CHECK(init["result"]["protocolVersion"] == "2025-06-18");
  p.writeLine(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");

  p.writeLine(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_tool_with_progress","_meta":{"progressToken":"tok"}}})");
  int progress = 0;
  Json last;
  for (int i = 0; i < 4; ++i) {
    last = readMessage(p);
    if (last.value("method", "") == "notifications/progress") {
      CHECK(last["params"]["progressToken"] == "tok");
      ++progress;
    }
  }
  CHECK(progress == 3);
  CHECK(last["id"] == 2);

  p.writeLine(
      R"({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})");
  auto stateless = readMessage(p);
  CHECK(stateless["result"]["resultType"] == "complete");

  p.writeLine("{not json");
  CHECK(readMessage(p)["error"]["code"] == -32700);
  p.writeLine(R"({"jsonrpc":"2.0","id":4,"method":"nope"})");
  CHECK(readMessage(p)["error"]["code"] == -32601);

  p.closeStdin();
  CHECK(p.wait() == 0);
  std::ifstream err(dir + "/stderr.txt");
  std::string text((std::istreambuf_iterator<char>(err)), {});
  CHECK(text.find("serving MCP on stdio") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("stdio relays sampling to the client and back") {
  auto dir = makeTempDir();
  Subprocess p({MCPHOST_BINARY, "serve", "--stdio", "--config", demoConfig()}, dir + "/stderr.txt", true);
  p.writeLine(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}}}})");
  readMessage(p);
  p.writeLine(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_sampling","arguments":{"prompt":"hi"}}})");
  auto request = readMessage(p);
  REQUIRE(request["method"] == "sampling/createMessage");
  Json answer = {
      {"jsonrpc", "2.0"},
      {"id", request["id"]},
      {"result", {{"role", "assistant"}, {"model", "m"}, {"content", {{"type", "text"}, {"text", "yo"}}}}}};
  p.writeLine(answer.dump());
  auto result = readMessage(p);
  CHECK(result["result"]["content"][0]["text"] == "LLM response: yo");
  p.closeStdin();
  CHECK(p.wait() == 0);
  std::system(("rm -rf " + dir).c_str());
}
