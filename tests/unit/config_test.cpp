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

TEST_CASE("connectors carry a region tag or per-region instances", "[config][residency]") {
  auto cfg = parseConfig(R"(connectors:
  - id: crm
    connector: conformance
    tags: [pii]
    region: eu
  - id: hr
    connector: hello
    config: {greeting: hi, punctuation: "!"}
    secrets: {token: {env: HR_TOKEN}}
    regions:
      eu:
        config: {greeting: hallo}
        secrets: {token: {env: HR_TOKEN_EU}}
      us: {}
      apac:
    default_region: eu
  - id: wiki
    type: remote
    regions:
      eu: {url: "https://eu.wiki.example.com/mcp", headers: {X-Region: eu}}
      us: {url: "https://us.wiki.example.com/mcp"}
  - id: tools
    type: stdio
    command: /usr/bin/server
    args: [--fast]
    regions:
      eu: {args: [--eu], env: {REGION: eu}}
      us: {command: /opt/us/server}
)",
                         "r.yaml");
  INFO((cfg ? std::string() : cfg.error()));
  REQUIRE(cfg);
  REQUIRE(cfg->connectors.size() == 4);
  const auto& crm = cfg->connectors[0];
  CHECK(crm.region == "eu");
  CHECK(crm.regions.empty());
  CHECK(crm.tags == std::vector<std::string>{"pii", "region:eu"});

  const auto& hr = cfg->connectors[1];
  CHECK(hr.region.empty());
  CHECK(hr.tags.empty());  // each region's tag is added per instance
  CHECK(hr.defaultRegion == "eu");
  REQUIRE(hr.regions.size() == 3);
  CHECK(hr.regions[0].name == "eu");  // file order
  CHECK(hr.regions[1].name == "us");
  CHECK(hr.regions[2].name == "apac");
  CHECK(hr.regions[0].settings == nlohmann::json{{"greeting", "hallo"}});
  CHECK(hr.regions[0].secrets.at("token").env == "HR_TOKEN_EU");
  CHECK(hr.regions[1].settings.empty());
  CHECK(hr.regions[0].line == 11);

  const auto& wiki = cfg->connectors[2];
  REQUIRE(wiki.regions.size() == 2);
  CHECK(wiki.url.empty());
  CHECK(wiki.regions[0].url == "https://eu.wiki.example.com/mcp");
  CHECK(wiki.regions[0].headers.at("X-Region") == "eu");

  const auto& tools = cfg->connectors[3];
  REQUIRE(tools.regions.size() == 2);
  REQUIRE(tools.regions[0].args);
  CHECK(*tools.regions[0].args == std::vector<std::string>{"--eu"});
  CHECK(tools.regions[0].env.at("REGION") == "eu");
  CHECK_FALSE(tools.regions[1].args);
  CHECK(tools.regions[1].command == "/opt/us/server");
  CHECK(cfg->residencyAttribute == "region");
}

TEST_CASE("residency mistakes are refused with the key that is wrong", "[config][residency]") {
  auto error = [](const std::string& connector) {
    auto cfg = parseConfig("connectors:\n  - id: hr\n" + connector, "e.yaml");
    return cfg ? std::string("(loaded)") : cfg.error();
  };
  CHECK(error("    connector: hello\n    region: eu\n    regions: {eu: {}}\n") ==
        "e.yaml:5: connectors[0]: set either `region` (the one region of this instance) or `regions` "
        "(per-region instances), not both");
  CHECK(error("    connector: hello\n    regions: {eu: {}, us: {}}\n    default_region: apac\n") ==
        "e.yaml:5: connectors[0].default_region: 'apac' is not one of regions (eu, us)");
  CHECK(error("    connector: hello\n    region: eu\n    default_region: eu\n") ==
        "e.yaml:5: connectors[0].default_region: is only for connectors with `regions` (per-region "
        "instances)");
  CHECK(error("    connector: hello\n    region: EU\n") ==
        "e.yaml:4: connectors[0].region: 'EU' must be 1-32 lowercase letters, digits or '-'");
  CHECK(error("    connector: hello\n    regions:\n      eu_west: {}\n") ==
        "e.yaml:5: connectors[0].regions.eu_west: 'eu_west' must be 1-32 lowercase letters, digits or '-'");
  CHECK(error("    connector: hello\n    region: " + std::string(33, 'a') + "\n").find("must be 1-32") !=
        std::string::npos);
  CHECK(error("    connector: hello\n    regions: []\n") ==
        "e.yaml:4: connectors[0].regions: expected a mapping of region name to its overrides (e.g. eu: {}, "
        "us: {})");
  CHECK(
      error("    connector: hello\n    regions:\n      eu: {url: http://x/mcp}\n")
          .starts_with("e.yaml:5: connectors[0].regions.eu.url: unknown key (known keys: config, secrets)"));
  CHECK(error("    type: remote\n    regions:\n      eu: {}\n") ==
        "e.yaml:5: connectors[0].regions.eu.url: needs an http(s)://host:port/path (here, or `url` on the "
        "connector for all regions)");
  CHECK(error("    type: stdio\n    regions:\n      eu: {args: [x]}\n") ==
        "e.yaml:5: connectors[0].regions.eu.command: a stdio connector needs `command` (here, or on the "
        "connector for all regions)");
  CHECK(error("    connector: hello\n    tags: [region:us]\n    region: eu\n") ==
        "e.yaml:4: connectors[0].tags: 'region:us': region tags come from `region` or `regions`; set those "
        "instead");
  CHECK(error("    connector: hello\n    regions:\n      eu: {secrets: {k: {env: A, file: B}}}\n")
            .starts_with("e.yaml:5: connectors[0].regions.eu.secrets.k: set exactly one of"));
}
