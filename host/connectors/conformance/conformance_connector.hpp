// The official MCP conformance fixture (../shared/conformance/FIXTURE.md) as an in-process
// connector: fixed tool, resource and prompt names with fixed payloads. It exists so the host's
// protocol layer can be scored by the official suites; it never touches a real system.
#pragma once

#include <atomic>
#include <string>

#include "connectors/connector.hpp"

namespace mcphost::connectors::conformance {

class ConformanceConnector final : public Connector {
 public:
  void attach(ConnectorEvents* events) override;
  Expected<Descriptor, RpcError> describe() override;
  Outcome callTool(std::string_view name, const Json& arguments, CallContext& ctx) override;
  Outcome readResource(std::string_view uri, CallContext& ctx) override;
  Outcome getPrompt(std::string_view name, const Json& arguments, CallContext& ctx) override;
  Outcome complete(const Json& ref, const Json& argument, const Json& context, CallContext& ctx) override;
  Outcome subscribe(std::string_view uri) override;
  Outcome unsubscribe(std::string_view uri) override;

 private:
  std::atomic<ConnectorEvents*> events_{nullptr};
};

// Tool catalogue and handlers live in conformance_tools.cpp; resources, prompts and completion
// in conformance_content.cpp.
Json conformanceTools();
Outcome callConformanceTool(std::string_view name, const Json& arguments, CallContext& ctx,
                            ConnectorEvents* events);
Json conformancePrompts();
Outcome getConformancePrompt(std::string_view name, const Json& arguments, CallContext& ctx);
Json conformanceResources();
Json conformanceResourceTemplates();
Outcome readConformanceResource(std::string_view uri);
Outcome completeConformance(const Json& ref, const Json& argument);

// Shared payloads.
inline constexpr const char* kPng1x1 =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
inline constexpr const char* kWavEmpty = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

// The content of an accepted elicitation answer under key, or nullptr.
const Json* acceptedContent(const CallContext& ctx, std::string_view key);
Json textResult(std::string text);

}  // namespace mcphost::connectors::conformance
