// Tests of the plain-C connector. Nothing of it is linked in: FakeHost loads the built library
// from its connector folder (manifest + library), which is how any-language connectors are
// tested with the SDK.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "mcphost/connector.h"
#include "mcphost/testing/fake_host.hpp"

using mcphost::testing::FakeHost;
using mcphost::testing::Json;

namespace {

void requireLoaded(FakeHost& host) {
  const auto created = host.createFromDirectory(MINIMAL_CONNECTOR_DIR);
  INFO(created.error);
  REQUIRE(created.ok());
}

void requireClean(const FakeHost& host) {
  for (const auto& v : host.violations()) UNSCOPED_INFO("violation: " << v);
  CHECK(host.violations().empty());
  CHECK(host.strayCompletions() == 0);
}

}  // namespace

TEST_CASE("the table and the descriptor") {
  FakeHost host;
  requireLoaded(host);
  CHECK(std::string(host.table()->name) == "minimal");
  CHECK(host.table()->struct_size == sizeof(mcph_connector_api_v1));
  CHECK(host.table()->flags == 0);
  CHECK(host.checkHealth() == MCPH_OK);  // no check_health: the host treats it as healthy
  CHECK(host.logged("minimal connector ready"));
  const auto d = host.describe();
  REQUIRE(d.ok());
  REQUIRE(d.descriptor["tools"].size() == 1);
  CHECK(d.tool("hello")["inputSchema"]["properties"]["who"]["type"] == "string");
  requireClean(host);
}

TEST_CASE("hello greets `who`, escapes and all") {
  FakeHost host;
  requireLoaded(host);
  CHECK(host.callTool("hello", {{"who", "Ada"}}).text() == "Hello, Ada!");
  const auto r = host.callTool("hello", {{"who", "Ada \"the Countess\" \\ Lovelace\n"}});
  REQUIRE(r.status == MCPH_OK);
  CHECK(r.text() == "Hello, Ada \"the Countess\" \\ Lovelace\n!");
  CHECK(r.completions == 1);
  requireClean(host);
}

TEST_CASE("hello greets the caller when `who` is missing") {
  FakeHost host;
  host.caller = {{"subject", "carol@example.com"}, {"authMethod", "oauth"}, {"groups", {"it"}}};
  requireLoaded(host);
  CHECK(host.callTool("hello").text() == "Hello, carol@example.com!");
  // Member order and nesting do not confuse the scanner.
  const auto r =
      host.call("tools/call",
                Json{{"arguments", {{"x", {{"who", "nested"}}}, {"list", {1, "}", 3}}}}, {"name", "hello"}});
  CHECK(r.text() == "Hello, carol@example.com!");
  requireClean(host);
}

TEST_CASE("errors: unknown tool, unknown method") {
  FakeHost host;
  requireLoaded(host);
  const auto tool = host.callTool("goodbye");
  CHECK(tool.status == MCPH_INVALID_ARGUMENT);
  CHECK(tool.message == "Unknown tool");
  const auto method = host.call("resources/read", {{"uri", "file:///etc/passwd"}});
  CHECK(method.refused);
  CHECK(method.status == MCPH_UNIMPLEMENTED);
  CHECK(method.message.find("only tools/call") != std::string::npos);
  requireClean(host);
}
