#include "connectors/catalog.hpp"

#include <catch2/catch.hpp>

#include "fake_connector.hpp"
#include "guard/access_guard.hpp"

using namespace mcphost;
using mcphost::testing::FakeConnector;
using protocol::Json;

namespace {
std::shared_ptr<FakeConnector> fake(const connectors::Descriptor& d) {
  auto f = std::make_shared<FakeConnector>();
  f->onDescribe = [d] { return Expected<connectors::Descriptor, protocol::RpcError>(d); };
  return f;
}
}  // namespace

TEST_CASE("the catalog namespaces tools per connector instance") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Catalog catalog({{"hr", true, fake(FakeConnector::withTools({"query"}))},
                               {"crm", true, fake(FakeConnector::withTools({"query"}))},
                               {"plain", false, fake(FakeConnector::withTools({"ping_tool"}))}},
                              "__", bus);
  REQUIRE(catalog.load());
  auto tools = catalog.tools();
  REQUIRE(tools.size() == 3);
  CHECK(tools[0]["name"] == "hr__query");
  CHECK(tools[1]["name"] == "crm__query");
  CHECK(tools[2]["name"] == "ping_tool");
  auto target = catalog.findTool("crm__query");
  REQUIRE(target);
  CHECK(target->connectorId == "crm");
  CHECK(target->localName == "query");
  CHECK_FALSE(catalog.findTool("query"));
}

TEST_CASE("a name collision is an error naming both connectors") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Catalog catalog({{"a", false, fake(FakeConnector::withTools({"same"}))},
                               {"b", false, fake(FakeConnector::withTools({"same"}))}},
                              "__", bus);
  auto loaded = catalog.load();
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().find("'a'") != std::string::npos);
  CHECK(loaded.error().find("'b'") != std::string::npos);
}

TEST_CASE("a failing connector does not break listing the others") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto broken = std::make_shared<FakeConnector>();
  broken->onDescribe = [] {
    return Expected<connectors::Descriptor, protocol::RpcError>(
        unexpected(protocol::RpcError{-32603, "database down", nullptr}));
  };
  connectors::Catalog catalog({{"ok", true, fake(FakeConnector::withTools({"t"}))}, {"down", true, broken}},
                              "__", bus);
  REQUIRE(catalog.load());
  CHECK(catalog.tools().size() == 1);
  CHECK(catalog.unavailableConnectors() == std::vector<std::string>{"down"});
}

TEST_CASE("names that clients reject are left out") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Catalog catalog({{"x", true, fake(FakeConnector::withTools({"has space", "fine"}))}}, "__",
                              bus);
  REQUIRE(catalog.load());
  REQUIRE(catalog.tools().size() == 1);
  CHECK(catalog.tools()[0]["name"] == "x__fine");
}

TEST_CASE("list_changed from a connector refreshes the catalog and reaches listeners") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto f = fake(FakeConnector::withTools({"one"}));
  connectors::Catalog catalog({{"c", true, f}}, "__", bus);
  REQUIRE(catalog.load());
  int notified = 0;
  auto token = bus->subscribe([&](protocol::ChangeKind k, std::string_view) {
    if (k == protocol::ChangeKind::kToolsListChanged) ++notified;
  });
  f->onDescribe = [] {
    return Expected<connectors::Descriptor, protocol::RpcError>(FakeConnector::withTools({"one", "two"}));
  };
  f->events->toolsChanged();
  CHECK(notified == 1);
  CHECK(catalog.tools().size() == 2);
  token.reset();
  f->events->toolsChanged();
  CHECK(notified == 1);
}

TEST_CASE("URI templates match level-1 expressions") {
  CHECK(connectors::uriMatchesTemplate("test://template/123/data", "test://template/{id}/data"));
  CHECK_FALSE(connectors::uriMatchesTemplate("test://template/1/2/data", "test://template/{id}/data"));
  CHECK_FALSE(connectors::uriMatchesTemplate("test://other/1/data", "test://template/{id}/data"));
  CHECK(connectors::uriMatchesTemplate("a.b(c)", "a.b({x})"));
}

TEST_CASE("template matching is iterative: a huge URI cannot exhaust the stack") {
  std::string huge = "test://template/" + std::string(1 << 20, 'x') + "/data";
  CHECK(connectors::uriMatchesTemplate(huge, "test://template/{id}/data"));
  CHECK_FALSE(connectors::uriMatchesTemplate(huge + "/more", "test://template/{id}/data"));
}

namespace {

const Json kNoArguments = Json::object();

connectors::Caller callerIn(const Json& region, const std::string& attribute = "region") {
  connectors::Caller caller;
  caller.subject = "alice";
  if (!region.is_null()) caller.attributes[attribute] = region;
  return caller;
}

connectors::ConnectorInstance regional(const std::string& region, std::shared_ptr<FakeConnector> connector,
                                       const std::string& defaultRegion = "") {
  return {"hr", true, std::move(connector), region, defaultRegion};
}

std::shared_ptr<FakeConnector> down(const std::string& why) {
  auto f = std::make_shared<FakeConnector>();
  f->onDescribe = [why] {
    return Expected<connectors::Descriptor, protocol::RpcError>(
        unexpected(protocol::RpcError{-32603, why, nullptr}));
  };
  return f;
}

}  // namespace

TEST_CASE("a regional group is listed once and routed by the caller's region", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto eu = fake(FakeConnector::withTools({"query"}));
  auto us = fake(FakeConnector::withTools({"query"}));
  connectors::Catalog catalog({regional("eu", eu), regional("us", us)}, "__", bus);
  REQUIRE(catalog.load());
  REQUIRE(catalog.tools().size() == 1);
  CHECK(catalog.tools()[0]["name"] == "hr__query");
  CHECK(catalog.connectorIds() == std::vector<std::string>{"hr"});
  auto target = catalog.findTool("hr__query");
  REQUIRE(target);
  CHECK(target->regional);
  CHECK(target->region.empty());
  CHECK(target->connectorId == "hr");

  auto toUs = catalog.route(*target, callerIn("us"));
  REQUIRE(toUs);
  CHECK(toUs->connector == us);
  CHECK(toUs->region == "us");
  CHECK(toUs->connectorId == "hr");
  CHECK(toUs->localName == "query");
  auto toEu = catalog.route(*target, callerIn("EU"));  // region names are lower case
  REQUIRE(toEu);
  CHECK(toEu->connector == eu);
  auto listed = catalog.route(*target, callerIn(Json::array({"eu"})));  // a one-value LDAP attribute
  REQUIRE(listed);
  CHECK(listed->connector == eu);
}

TEST_CASE("an unrouted regional target fails closed", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Catalog catalog({regional("eu", fake(FakeConnector::withTools({"query"})))}, "__", bus);
  REQUIRE(catalog.load());
  auto target = catalog.findTool("hr__query");
  REQUIRE(target);
  auto outcome = target->connector->subscribe("x");
  REQUIRE(outcome.get_if<protocol::RpcError>());
  CHECK(outcome.get_if<protocol::RpcError>()->message.find("not routed") != std::string::npos);
}

TEST_CASE("a non-regional target is routed unchanged", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto plain = fake(FakeConnector::withTools({"t"}));
  connectors::Catalog catalog({{"crm", true, plain}}, "__", bus);
  REQUIRE(catalog.load());
  auto target = catalog.findTool("crm__t");
  REQUIRE(target);
  CHECK_FALSE(target->regional);
  auto routed = catalog.route(*target, callerIn("apac"));
  REQUIRE(routed);
  CHECK(routed->connector == plain);
  CHECK(routed->region.empty());
}

TEST_CASE("callers without a region go to the default region or are refused", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto eu = fake(FakeConnector::withTools({"query"}));
  auto us = fake(FakeConnector::withTools({"query"}));
  SECTION("with default_region") {
    connectors::Catalog catalog({regional("eu", eu, "eu"), regional("us", us, "eu")}, "__", bus);
    REQUIRE(catalog.load());
    auto routed = catalog.route(*catalog.findTool("hr__query"), callerIn(nullptr));
    REQUIRE(routed);
    CHECK(routed->connector == eu);
    CHECK(routed->region == "eu");
    // A region without an instance is refused even with a default: its data stays put.
    auto apac = catalog.route(*catalog.findTool("hr__query"), callerIn("apac"));
    REQUIRE_FALSE(apac);
    CHECK(apac.error().code == -32003);
    CHECK(apac.error().message ==
          "Forbidden: connector 'hr' has instances for regions eu, us; your region 'apac' has no instance "
          "(add one under the connector's regions, or correct the principal's 'region' attribute)");
  }
  SECTION("without default_region") {
    connectors::Catalog catalog({regional("eu", eu), regional("us", us)}, "__", bus);
    REQUIRE(catalog.load());
    auto refused = catalog.route(*catalog.findTool("hr__query"), callerIn(nullptr));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == connectors::kRegionRefused);
    CHECK(refused.error().message.starts_with(
        "Forbidden: connector 'hr' has instances for regions eu, us; your principal has no 'region' "
        "attribute and the connector has no default_region"));
    auto ambiguous = catalog.route(*catalog.findTool("hr__query"), callerIn(Json::array({"eu", "us"})));
    REQUIRE_FALSE(ambiguous);
    CHECK(ambiguous.error().message.find("is not one region name") != std::string::npos);
    auto number = catalog.route(*catalog.findTool("hr__query"), callerIn(7));
    REQUIRE_FALSE(number);
    CHECK(number.error().code == -32003);
  }
}

TEST_CASE("the region attribute name is configurable", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto eu = fake(FakeConnector::withTools({"query"}));
  auto us = fake(FakeConnector::withTools({"query"}));
  connectors::Catalog catalog({regional("eu", eu), regional("us", us)}, "__", bus, "data_region");
  REQUIRE(catalog.load());
  auto target = *catalog.findTool("hr__query");
  auto routed = catalog.route(target, callerIn("us", "data_region"));
  REQUIRE(routed);
  CHECK(routed->connector == us);
  auto refused = catalog.route(target, callerIn("us"));  // "region" is not the attribute here
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("no 'data_region' attribute") != std::string::npos);
}

TEST_CASE("a region that is down is refused, never served by another region", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  auto us = fake(FakeConnector::withTools({"query"}));
  connectors::Catalog catalog({regional("eu", down("worker crashed"), "eu"), regional("us", us, "eu")}, "__",
                              bus);
  REQUIRE(catalog.load());
  // The group is available while one region is; its items come from the first that answers.
  CHECK(catalog.unavailableConnectors().empty());
  CHECK(catalog.unavailableRegions() ==
        std::map<std::string, std::string, std::less<>>{{"hr@eu", "worker crashed"}});
  auto target = catalog.findTool("hr__query");
  REQUIRE(target);
  auto toEu = catalog.route(*target, callerIn("eu"));
  REQUIRE_FALSE(toEu);
  CHECK(toEu.error().code == -32603);
  CHECK(toEu.error().message ==
        "connector 'hr' is unavailable in region 'eu': worker crashed (calls are never sent to another "
        "region)");
  CHECK_FALSE(catalog.route(*target, callerIn(nullptr)));  // the default region is down too
  auto toUs = catalog.route(*target, callerIn("us"));
  REQUIRE(toUs);
  CHECK(toUs->connector == us);
}

TEST_CASE("a regional group with every region down is unavailable", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Catalog catalog({regional("eu", down("no database")), regional("us", down("no network"))}, "__",
                              bus);
  REQUIRE(catalog.load());
  CHECK(catalog.tools().empty());
  CHECK(catalog.unavailableConnectors() == std::vector<std::string>{"hr"});
  auto why = catalog.unavailableReason("hr__query");
  REQUIRE(why);
  CHECK(*why == "region eu: no database; region us: no network");
}

TEST_CASE("regional resources and templates carry the group for routing", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Descriptor d;
  d.resources.push_back({{"uri", "hr://people"}, {"name", "people"}});
  d.resourceTemplates.push_back({{"uriTemplate", "hr://people/{id}"}, {"name", "person"}});
  d.prompts.push_back({{"name", "summary"}});
  auto eu = fake(d);
  auto us = fake(d);
  connectors::Catalog catalog({regional("eu", eu), regional("us", us)}, "__", bus);
  REQUIRE(catalog.load());  // the same URIs in both regions are not a collision
  CHECK(catalog.resources().size() == 1);
  const auto caller = callerIn("us");
  for (const auto& target : {catalog.findResource("hr://people"), catalog.findResource("hr://people/7"),
                             catalog.findTemplate("hr://people/{id}"), catalog.findPrompt("hr__summary")}) {
    REQUIRE(target);
    CHECK(target->regional);
    auto routed = catalog.route(*target, caller);
    REQUIRE(routed);
    CHECK(routed->connector == us);
  }
  CHECK(catalog.findResource("hr://people/7")->localName == "hr://people/7");
}

TEST_CASE("inconsistent regional instances are refused at load", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  SECTION("the same region twice") {
    connectors::Catalog catalog({regional("eu", fake(FakeConnector::withTools({"a"}))),
                                 regional("eu", fake(FakeConnector::withTools({"a"})))},
                                "__", bus);
    auto loaded = catalog.load();
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error() == "connector 'hr' has two instances for region 'eu'");
  }
  SECTION("with and without a region") {
    connectors::Catalog catalog({regional("eu", fake(FakeConnector::withTools({"a"}))),
                                 {"hr", true, fake(FakeConnector::withTools({"b"}))}},
                                "__", bus);
    auto loaded = catalog.load();
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error() == "connector 'hr' is configured both with and without a region");
  }
}

TEST_CASE("the policy sees the routed region's tag under the configured id", "[catalog][residency]") {
  auto bus = std::make_shared<protocol::ChangeBus>();
  connectors::Catalog catalog({regional("eu", fake(FakeConnector::withTools({"query"}))),
                               regional("us", fake(FakeConnector::withTools({"query"})))},
                              "__", bus);
  REQUIRE(catalog.load());
  auto policy = policy::Policy::parse(R"(version: 1
rules:
  - id: eu-pii
    effect: allow
    actions: [tools/call]
    targets: {connectors: [hr], tags: ["region:eu"]}
)",
                                      "p.yaml");
  REQUIRE(policy);
  guard::AccessGuard::ConnectorFacts hr{{"pii"}, ""};
  hr.regionTags["eu"] = {"pii", "region:eu"};
  hr.regionTags["us"] = {"pii", "region:us"};
  const guard::AccessGuard accessGuard(std::make_shared<policy::PolicyStore>("p.yaml", *policy), {{"hr", hr}},
                                       nullptr);
  // What the router does: find, route, then authorize the routed target.
  auto decide = [&](const std::string& region) {
    const auto caller = callerIn(region);
    auto routed = catalog.route(*catalog.findTool("hr__query"), caller);
    REQUIRE(routed);
    const guard::AccessTarget access{"tool", routed->connectorId, "hr__query", nullptr, routed->region};
    return accessGuard.authorize(caller, policy::Action::kCallTool, access, &kNoArguments);
  };
  CHECK_FALSE(decide("eu"));
  auto refused = decide("us");
  REQUIRE(refused);
  CHECK(refused->code == guard::kForbidden);
  CHECK(guard::kForbidden == connectors::kRegionRefused);
  // Unrouted (no region): the shared tags only, without any region tag.
  const guard::AccessTarget unrouted{"tool", "hr", "hr__query", nullptr};
  CHECK(accessGuard.authorize(callerIn("eu"), policy::Action::kCallTool, unrouted, &kNoArguments));
}
