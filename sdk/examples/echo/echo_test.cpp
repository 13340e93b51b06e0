// Unit tests of the echo connector, driven through the C ABI by mcphost::testing::FakeHost.
// The connector's source is compiled into this executable (create(&mcph_connector_entry_v1)),
// and one test loads the built library from its connector folder, as the worker would.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mcphost/connector.h"
#include "mcphost/testing/fake_host.hpp"

using mcphost::testing::CallOptions;
using mcphost::testing::FakeHost;
using mcphost::testing::Json;

namespace {

// Every test ends here: the connector kept the connector.h contract.
void requireClean(const FakeHost& host) {
  for (const auto& v : host.violations()) UNSCOPED_INFO("violation: " << v);
  CHECK(host.violations().empty());
  CHECK(host.strayCompletions() == 0);
}

void requireCreated(FakeHost& host) {
  const auto created = host.create(&mcph_connector_entry_v1);
  INFO(created.error);
  REQUIRE(created.ok());
}

}  // namespace

TEST_CASE("describe lists the four tools with their schemas") {
  FakeHost host;
  requireCreated(host);
  const auto d = host.describe();
  REQUIRE(d.ok());
  REQUIRE(d.descriptor["tools"].size() == 4);
  for (const char* name : {"echo", "ask_name", "count", "greet"}) {
    const Json tool = d.tool(name);
    INFO(name);
    REQUIRE(tool.is_object());
    CHECK(tool["inputSchema"]["type"] == "object");
  }
  CHECK(d.tool("echo")["inputSchema"]["required"] == Json::array({"text"}));
  CHECK(d.tool("count")["outputSchema"]["required"] == Json::array({"count"}));
  CHECK(host.table()->flags & MCPH_CONNECTOR_CONCURRENT);
  CHECK(std::string(host.table()->name) == "echo");
  requireClean(host);
}

TEST_CASE("echo returns its text and logs to the client") {
  FakeHost host;
  requireCreated(host);
  const auto r = host.callTool("echo", {{"text", "hello, world"}});
  REQUIRE(r.status == MCPH_OK);
  CHECK(r.text() == "hello, world");
  CHECK_FALSE(r.isError());
  CHECK(r.completions == 1);
  REQUIRE(r.clientLogs.size() == 1);
  CHECK(r.clientLogs[0]["level"] == "debug");
  CHECK(r.clientLogs[0]["logger"] == "echo");
  CHECK(r.clientLogs[0]["data"]["length"] == 12);
  requireClean(host);
}

TEST_CASE("bad input is a tool error (isError), not a failed call") {
  FakeHost host;
  requireCreated(host);
  const auto r = host.callTool("echo", {{"text", 42}});
  REQUIRE(r.status == MCPH_OK);
  CHECK(r.isError());
  CHECK(r.text() == "text must be a string");
  requireClean(host);
}

TEST_CASE("an unknown tool fails with an error status") {
  FakeHost host;
  requireCreated(host);
  const auto r = host.callTool("no_such_tool");
  CHECK(r.status == MCPH_INVALID_ARGUMENT);
  CHECK(r.message.find("no_such_tool") != std::string::npos);
  CHECK(r.completions == 1);
  requireClean(host);
}

TEST_CASE("an unknown method is refused synchronously") {
  FakeHost host;
  requireCreated(host);
  const auto r = host.call("sampling/createMessage", Json::object());
  CHECK(r.refused);
  CHECK(r.status == MCPH_UNIMPLEMENTED);
  CHECK(r.message.find("sampling/createMessage") != std::string::npos);
  CHECK(r.completions == 0);
  requireClean(host);
}

TEST_CASE("greet uses the configured greeting and the caller's identity") {
  FakeHost host;
  SECTION("defaults") {
    requireCreated(host);
    CHECK(host.callTool("greet").text() == "Hello, test-user!");
  }
  SECTION("greeting from config, name from the caller") {
    host.config = {{"greeting", "Good morning"}};
    host.caller = {{"subject", "alice"}, {"authMethod", "oauth"}, {"groups", {"hr"}}, {"tenant", "acme"}};
    requireCreated(host);
    CHECK(host.callTool("greet").text() == "Good morning, alice!");
    CHECK(host.callTool("greet", {{"name", "Bob"}}).text() == "Good morning, Bob!");
  }
  SECTION("config is fixed at create()") {
    host.config = {{"greeting", "Hi"}};
    requireCreated(host);
    host.config = {{"greeting", "Ignored"}};
    CHECK(host.callTool("greet", {{"name", "Eve"}}).text() == "Hi, Eve!");
  }
  requireClean(host);
}

TEST_CASE("the token secret is read and never logged") {
  FakeHost host;
  host.declaredSecrets = {"token"};
  SECTION("set") {
    host.secrets["token"] = "s3cr3t-value";
    requireCreated(host);
    CHECK(host.logged("token set"));
  }
  SECTION("not set") {
    requireCreated(host);
    CHECK(host.logged("token not set"));
  }
  CHECK(host.secretLookups() == std::vector<std::string>{"token"});
  for (const auto& line : host.logs()) CHECK(line.message.find("s3cr3t") == std::string::npos);
  requireClean(host);
}

TEST_CASE("ask_name elicits the name over input_required rounds") {
  FakeHost host;
  host.clientCapabilities = {"elicitation"};
  requireCreated(host);

  SECTION("the first round asks") {
    const auto r = host.callTool("ask_name");
    REQUIRE(r.status == MCPH_OK);
    REQUIRE(r.resultType() == "input_required");
    const Json& request = r.result["inputRequests"]["name"];
    CHECK(request["method"] == "elicitation/create");
    CHECK(request["params"]["message"] == "What is your name?");
    CHECK(request["params"]["requestedSchema"]["required"] == Json::array({"name"}));
    CHECK(r.result["requestState"] == Json{{"attempt", 1}});
  }
  SECTION("the answer comes back and is used") {
    host.inputResponder = [](const std::string& key, const Json& request) {
      CHECK(key == "name");
      CHECK(request["method"] == "elicitation/create");
      return FakeHost::accept({{"name", "Ada"}});
    };
    const auto r = host.callToolWithInput("ask_name");
    REQUIRE(r.status == MCPH_OK);
    CHECK(r.text() == "Nice to meet you, Ada!");
    CHECK(r.inputRounds == 1);
  }
  SECTION("requestState carries the attempt count across rounds") {
    int asked = 0;
    host.inputResponder = [&](const std::string&, const Json& request) {
      ++asked;
      if (asked == 1) return FakeHost::accept({{"name", ""}});
      CHECK(request["params"]["message"] == "Please type a name.");
      return FakeHost::accept({{"name", "Grace"}});
    };
    const auto r = host.callToolWithInput("ask_name");
    CHECK(r.text() == "Nice to meet you, Grace!");
    CHECK(r.inputRounds == 2);
    CHECK(r.inputRequests.size() == 2);
  }
  SECTION("giving up after three empty answers") {
    host.inputResponder = [](const std::string&, const Json&) { return FakeHost::accept({{"name", ""}}); };
    const auto r = host.callToolWithInput("ask_name");
    CHECK(r.isError());
    CHECK(r.inputRounds == 3);
  }
  SECTION("a declined question") {
    host.inputResponder = [](const std::string&, const Json&) { return FakeHost::decline(); };
    CHECK(host.callToolWithInput("ask_name").text() == "You did not tell me your name.");
  }
  SECTION("a client without elicitation gets a tool error, not a question") {
    CallOptions noElicitation;
    noElicitation.clientCapabilities = std::set<std::string>{};
    const auto r = host.callTool("ask_name", Json::object(), noElicitation);
    CHECK(r.isError());
    CHECK(r.resultType() == "complete");
  }
  requireClean(host);
}

TEST_CASE("count is deferred and reports progress") {
  FakeHost host;
  requireCreated(host);
  SECTION("the first call only announces the work") {
    CallOptions raw;
    raw.followDeferred = false;
    const auto r = host.callTool("count", {{"to", 3}}, raw);
    REQUIRE(r.resultType() == "deferred");
    CHECK(r.result["taskRequired"] == false);
    CHECK(r.progress.empty());
  }
  SECTION("the run call does the work, inline or as a task") {
    CallOptions options;
    options.inTask = GENERATE(false, true);
    const auto r = host.callTool("count", {{"to", 3}}, options);
    REQUIRE(r.status == MCPH_OK);
    CHECK(r.deferred);
    CHECK(r.text() == "Counted to 3.");
    CHECK(r.result["structuredContent"]["count"] == 3);
    REQUIRE(r.progress.size() == 3);
    for (int i = 0; i < 3; ++i) {
      CHECK(r.progress[i]["progress"] == i + 1);
      CHECK(r.progress[i]["total"] == 3);
    }
    CHECK(r.completions == 1);
  }
  SECTION("bad arguments are a tool error before any work is deferred") {
    const auto r = host.callTool("count", {{"to", 0}});
    CHECK(r.isError());
    CHECK_FALSE(r.deferred);
  }
  requireClean(host);
}

TEST_CASE("count stops when the call is cancelled") {
  FakeHost host;
  requireCreated(host);
  SECTION("cancelled before it starts") {
    host.cancelNext = true;
    const auto r = host.callTool("count", {{"to", 5}});
    CHECK(r.status == MCPH_CANCELLED);
    CHECK(r.message == "cancelled after 0 of 5");
    CHECK(r.progress.empty());
  }
  SECTION("cancelled between steps (polled)") {
    CallOptions options;
    options.cancelAfterProgress = 2;
    const auto r = host.callTool("count", {{"to", 10}}, options);
    CHECK(r.status == MCPH_CANCELLED);
    CHECK(r.message == "cancelled after 2 of 10");
    CHECK(r.progress.size() == 2);
  }
  SECTION("cancelled from another thread while it waits (on-cancel callback)") {
    CallOptions options;
    options.cancelAfter = std::chrono::milliseconds(50);
    const auto start = std::chrono::steady_clock::now();
    const auto r = host.callTool("count", {{"to", 3}, {"delayMs", 5000}}, options);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(r.status == MCPH_CANCELLED);
    CHECK(r.cancelled);
    CHECK(elapsed < std::chrono::seconds(3));  // woken, not waiting out the 5 s delay
  }
  SECTION("cancelled at the deadline") {
    CallOptions options;
    options.deadline = std::chrono::milliseconds(100);
    const auto r = host.callTool("count", {{"to", 3}, {"delayMs", 5000}}, options);
    CHECK(r.status == MCPH_CANCELLED);
    CHECK(r.deadlineExceeded);
  }
  requireClean(host);
}

TEST_CASE("concurrent calls (MCPH_CONNECTOR_CONCURRENT)") {
  FakeHost host;
  requireCreated(host);
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&host, &good, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string text = std::to_string(t) + ":" + std::to_string(i);
        const auto r = host.callTool("echo", {{"text", text}});
        if (r.status == MCPH_OK && r.text() == text) ++good[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(good == std::vector<int>(4, 25));
  requireClean(host);
}

TEST_CASE("the built library loads from its connector folder") {
  FakeHost host;
  const auto created = host.createFromDirectory(ECHO_CONNECTOR_DIR);
  INFO(created.error);
  REQUIRE(created.ok());
  CHECK(host.manifest()["name"] == "echo");
  CHECK(host.declaredSecrets == std::set<std::string>{"token"});
  CHECK(host.describe().descriptor["tools"].size() == 4);
  CHECK(host.callTool("echo", {{"text", "from the .so"}}).text() == "from the .so");
  requireClean(host);
}
