#include "connectors/catalog.hpp"

#include <catch2/catch.hpp>

#include "fake_connector.hpp"

using namespace mcphost;
using mcphost::testing::FakeConnector;

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
