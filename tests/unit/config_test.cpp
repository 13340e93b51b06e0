#include "config/config.hpp"

#include <catch2/catch.hpp>

using namespace mcphost::config;

namespace {
const char* kValid = R"(name: test
server:
  listen: 127.0.0.1:9000
  session_idle_timeout: 5m
connectors:
  - id: conformance
    connector: conformance
    prefix: false
)";
}

TEST_CASE("a valid configuration loads with its values") {
  auto cfg = parseConfig(kValid, "t.yaml");
  REQUIRE(cfg);
  CHECK(cfg->server.port == 9000);
  CHECK(cfg->server.host == "127.0.0.1");
  CHECK(cfg->server.sessionIdleTimeout == std::chrono::minutes(5));
  REQUIRE(cfg->connectors.size() == 1);
  CHECK_FALSE(cfg->connectors[0].prefix);
}

TEST_CASE("configuration errors name the file, the line and the key") {
  auto unknown = parseConfig("server:\n  listne: 1.2.3.4:5\nconnectors: []\n", "bad.yaml");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().find("bad.yaml:2: server.listne: unknown key") == 0);

  auto badPort = parseConfig("server:\n  listen: 127.0.0.1:99999\n", "p.yaml");
  REQUIRE_FALSE(badPort);
  CHECK(badPort.error().find("p.yaml:2: server.listen") == 0);

  auto badType = parseConfig("connectors:\n  - id: a\n    type: nope\n", "c.yaml");
  REQUIRE_FALSE(badType);
  CHECK(badType.error().find("c.yaml:3: connectors[0].type: unknown connector type 'nope'") == 0);

  auto dup = parseConfig(
      "connectors:\n  - {id: a, connector: conformance}\n  - {id: a, connector: conformance}\n", "d.yaml");
  REQUIRE_FALSE(dup);
  CHECK(dup.error().find("duplicate connector id") != std::string::npos);

  auto yaml = parseConfig("server: [\n", "y.yaml");
  REQUIRE_FALSE(yaml);
  CHECK(yaml.error().find("y.yaml:") == 0);

  auto none = parseConfig("name: x\n", "n.yaml");
  REQUIRE_FALSE(none);
  CHECK(none.error().find("connectors") != std::string::npos);
}

TEST_CASE("durations and listen addresses") {
  CHECK(*parseDuration("250ms") == std::chrono::milliseconds(250));
  CHECK(*parseDuration("2h") == std::chrono::hours(2));
  CHECK_FALSE(parseDuration("10"));
  CHECK_FALSE(parseDuration("-1s"));
  CHECK(parseListen("127.0.0.1:0")->second == 0);
  CHECK_FALSE(parseListen("localhost"));
  CHECK_FALSE(parseListen("h:70000"));
}

TEST_CASE("the shipped demo configuration is valid") {
  auto cfg = loadConfig(MCPHOST_SOURCE_DIR "/config/demo.yaml");
  INFO((cfg ? std::string() : cfg.error()));
  CHECK(cfg);
}
