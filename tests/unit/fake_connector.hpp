// A scriptable in-process connector for unit tests of the catalog and router.
#pragma once

#include <functional>

#include "connectors/connector.hpp"

namespace mcphost::testing {

using connectors::CallContext;
using connectors::Outcome;
using protocol::Json;
using protocol::RpcError;

class FakeConnector final : public connectors::Connector {
 public:
  std::function<Expected<connectors::Descriptor, RpcError>()> onDescribe = [] {
    return Expected<connectors::Descriptor, RpcError>(connectors::Descriptor{});
  };
  std::function<Outcome(std::string_view, const Json&, CallContext&)> onCall =
      [](std::string_view, const Json&, CallContext&) -> Outcome {
    return Json{{"content", Json::array()}};
  };
  connectors::ConnectorEvents* events = nullptr;

  static connectors::Descriptor withTools(std::initializer_list<const char*> names) {
    connectors::Descriptor d;
    for (const char* n : names) {
      d.tools.push_back({{"name", n}, {"description", "d"}, {"inputSchema", {{"type", "object"}}}});
    }
    return d;
  }

  void attach(connectors::ConnectorEvents* e) override { events = e; }
  Expected<connectors::Descriptor, RpcError> describe() override { return onDescribe(); }
  Outcome callTool(std::string_view name, const Json& args, CallContext& ctx) override {
    return onCall(name, args, ctx);
  }
  Outcome readResource(std::string_view uri, CallContext&) override {
    return Json{{"contents", {{{"uri", uri}, {"text", "x"}}}}};
  }
  Outcome getPrompt(std::string_view, const Json&, CallContext&) override {
    return Json{{"messages", Json::array()}};
  }
  Outcome complete(const Json&, const Json&, const Json&, CallContext&) override {
    return Json{{"completion", {{"values", Json::array()}}}};
  }
  Outcome subscribe(std::string_view) override { return Json::object(); }
  Outcome unsubscribe(std::string_view) override { return Json::object(); }
};

}  // namespace mcphost::testing
