#include "transport/stateless_headers.hpp"

#include "common/base64.hpp"
#include "protocol/versions.hpp"
#include "transport/http_wire.hpp"

namespace mcphost::transport {

namespace {

using protocol::Json;
namespace errc = protocol::errc;

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::optional<std::string> header(const HeaderList& headers, const std::string& name) {
  auto value = findHeader(headers, name);
  if (!value) return std::nullopt;
  return std::string(trim(*value));
}

LadderFailure mismatch(std::string message) {
  return LadderFailure{400, protocol::RpcError{errc::kHeaderMismatch, std::move(message), nullptr}};
}

// The value a header must carry for a body value (strings verbatim, others as JSON text).
std::string headerForm(const Json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

std::optional<std::string> decodeHeaderValue(std::string_view value) {
  constexpr std::string_view kPrefix = "=?base64?";
  constexpr std::string_view kSuffix = "?=";
  if (value.size() >= kPrefix.size() + kSuffix.size() && value.starts_with(kPrefix) &&
      value.ends_with(kSuffix)) {
    return base64Decode(value.substr(kPrefix.size(), value.size() - kPrefix.size() - kSuffix.size()));
  }
  return std::string(value);
}

std::optional<LadderFailure> validateStatelessRequest(const HeaderList* head,
                                                      const protocol::Message& message,
                                                      const ToolSchemaLookup& toolSchema) {
  // Rung 1: the envelope.
  Json missing = Json::array();
  const Json* meta = nullptr;
  if (message.params.is_object() && message.params.contains("_meta") && message.params["_meta"].is_object()) {
    meta = &message.params["_meta"];
  }
  if (meta == nullptr) {
    missing.push_back("_meta");
  } else {
    auto v = meta->find(protocol::kMetaProtocolVersion);
    if (v == meta->end() || !v->is_string()) missing.push_back(protocol::kMetaProtocolVersion);
    auto c = meta->find(protocol::kMetaClientCapabilities);
    if (c == meta->end() || !c->is_object()) missing.push_back(protocol::kMetaClientCapabilities);
  }
  if (!missing.empty()) {
    return LadderFailure{400,
                         {errc::kInvalidParams,
                          "Invalid request envelope: params._meta must carry protocolVersion and "
                          "clientCapabilities",
                          {{"envelope", {{"missing", missing}}}}}};
  }
  const std::string version = (*meta)[std::string(protocol::kMetaProtocolVersion)].get<std::string>();
  std::optional<std::string> headerVersion;
  std::optional<std::string> headerMethod;
  if (head != nullptr) {
    headerVersion = header(*head, "MCP-Protocol-Version");
    headerMethod = header(*head, "Mcp-Method");
    // Rungs 2 and 3: headers that are present must agree with the body.
    if (headerVersion && *headerVersion != version) {
      return mismatch("MCP-Protocol-Version header '" + *headerVersion +
                      "' does not match _meta protocolVersion '" + version + "'");
    }
    if (headerMethod && *headerMethod != message.method) {
      return mismatch("Mcp-Method header '" + *headerMethod + "' does not match the body method '" +
                      message.method + "'");
    }
  }
  // Rung 4: a revision we serve.
  if (!protocol::isStatelessVersion(version)) {
    Json supported = Json::array();
    for (auto v : protocol::kStatelessVersions) supported.push_back(v);
    return LadderFailure{400,
                         {errc::kUnsupportedProtocolVersion,
                          "Unsupported protocol version '" + version + "'",
                          {{"supported", supported}, {"requested", version}}}};
  }
  if (head == nullptr) return std::nullopt;
  // Rung 5: required headers.
  if (!headerVersion) return mismatch("the MCP-Protocol-Version header is required");
  if (!headerMethod) return mismatch("the Mcp-Method header is required");
  // Rung 6: Mcp-Name for methods that name a target.
  const char* nameKey = nullptr;
  if (message.method == "tools/call" || message.method == "prompts/get") nameKey = "name";
  if (message.method == "resources/read") nameKey = "uri";
  if (message.method == "tasks/get" || message.method == "tasks/update" || message.method == "tasks/cancel") {
    nameKey = "taskId";
  }
  if (nameKey != nullptr && message.params.contains(nameKey) && message.params[nameKey].is_string()) {
    const std::string expected = message.params[nameKey].get<std::string>();
    auto name = header(*head, "Mcp-Name");
    if (!name) return mismatch("the Mcp-Name header is required for " + message.method);
    auto decoded = decodeHeaderValue(*name);
    if (!decoded || *decoded != expected) {
      return mismatch("Mcp-Name header does not match params." + std::string(nameKey));
    }
  }
  // Rung 7: Mcp-Param-* headers mirrored from tool arguments (x-mcp-header).
  if (message.method == "tools/call" && message.params.contains("name") &&
      message.params["name"].is_string() && toolSchema) {
    const Json schema = toolSchema(message.params["name"].get<std::string>());
    const Json args = message.params.value("arguments", Json::object());
    if (schema.is_object() && schema.contains("properties") && schema["properties"].is_object()) {
      for (auto it = schema["properties"].begin(); it != schema["properties"].end(); ++it) {
        if (!it.value().is_object() || !it.value().contains("x-mcp-header") ||
            !it.value()["x-mcp-header"].is_string()) {
          continue;
        }
        const std::string headerName = "Mcp-Param-" + it.value()["x-mcp-header"].get<std::string>();
        auto value = header(*head, headerName);
        const bool inBody = args.is_object() && args.contains(it.key()) && !args[it.key()].is_null();
        if (!inBody) {
          if (value) return mismatch(headerName + " is set but argument '" + it.key() + "' is absent");
          continue;
        }
        if (!value)
          return mismatch("the " + headerName + " header is required (argument '" + it.key() + "')");
        auto decoded = decodeHeaderValue(*value);
        if (!decoded || *decoded != headerForm(args[it.key()])) {
          return mismatch(headerName + " header does not match argument '" + it.key() + "'");
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace mcphost::transport
