// The official MCP conformance fixture (../shared/conformance/FIXTURE.md) as an SDK connector:
// fixed tool, resource and prompt names with fixed payloads. It is built and loaded exactly as
// a vendor's connector is (a library in a sandboxed worker), so the official suites score the
// host's protocol layer through the worker hop. It never touches a real system.
#pragma once

#include <string>
#include <string_view>

#include "mcphost/connector.hpp"

namespace mcphost::plugins::conformance {

using sdk::Call;
using sdk::Deferred;
using sdk::Error;
using sdk::Host;
using sdk::InputRequired;
using sdk::Json;
using sdk::LogLevel;
using sdk::Outcome;

class ConformanceConnector final : public sdk::Connector {
 public:
  ConformanceConnector(Host& host, const Json& /*config*/) : Connector(host) {}
  Json describe() override;
  Outcome callTool(const std::string& name, const Json& arguments, Call& call) override;
  Outcome readResource(const std::string& uri, Call& call) override;
  Outcome getPrompt(const std::string& name, const Json& arguments, Call& call) override;
  Outcome complete(const Json& ref, const Json& argument, const Json& context, Call& call) override;
};

// Tool catalogue and handlers live in conformance_tools.cpp; resources, prompts and completion
// in conformance_content.cpp.
Json conformanceTools();
Outcome callConformanceTool(std::string_view name, const Json& arguments, Call& ctx, const Host& host);
Json conformancePrompts();
Outcome getConformancePrompt(std::string_view name, const Json& arguments, Call& ctx);
Json conformanceResources();
Json conformanceResourceTemplates();
Outcome readConformanceResource(std::string_view uri);
Outcome completeConformance(const Json& ref, const Json& argument);

// Shared payloads.
inline constexpr const char* kPng1x1 =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
inline constexpr const char* kWavEmpty = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

// The content of an accepted elicitation answer under key, or nullptr.
const Json* acceptedContent(const Call& ctx, const std::string& key);
Json textResult(std::string text);

}  // namespace mcphost::plugins::conformance
