// The 2026-07-28 request validation ladder (envelope, MCP-Protocol-Version, Mcp-Method,
// Mcp-Name, Mcp-Param-*), in the order the revision defines: the first failing rung answers.
#pragma once

#include <functional>
#include <optional>

#include "protocol/json_rpc.hpp"
#include "transport/http_server.hpp"

namespace mcphost::transport {

struct LadderFailure {
  int httpStatus = 400;
  protocol::RpcError error;
};

// Looks up a tool's inputSchema by exposed name (for Mcp-Param-* headers); null if unknown.
using ToolSchemaLookup = std::function<protocol::Json(std::string_view toolName)>;

// headers: the raw HTTP header fields, or null for stdio (which has no headers to check).
std::optional<LadderFailure> validateStatelessRequest(const HeaderList* headers,
                                                      const protocol::Message& message,
                                                      const ToolSchemaLookup& toolSchema);

// Decodes an `=?base64?...?=` header value; other values are literal. nullopt: bad encoding.
std::optional<std::string> decodeHeaderValue(std::string_view value);

}  // namespace mcphost::transport
