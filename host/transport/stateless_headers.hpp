// The 2026-07-28 request validation ladder (envelope, MCP-Protocol-Version, Mcp-Method,
// Mcp-Name, Mcp-Param-*), in the order the revision defines: the first failing rung answers.
#pragma once

#include <Poco/Net/HTTPRequest.h>

#include <functional>
#include <optional>

#include "protocol/json_rpc.hpp"

namespace mcphost::transport {

struct LadderFailure {
  int httpStatus = 400;
  protocol::RpcError error;
};

// Looks up a tool's inputSchema by exposed name (for Mcp-Param-* headers); null if unknown.
using ToolSchemaLookup = std::function<protocol::Json(std::string_view toolName)>;

// http: true when headers must be checked (HTTP); false for stdio, which has no headers.
std::optional<LadderFailure> validateStatelessRequest(const Poco::Net::HTTPRequest* head,
                                                      const protocol::Message& message,
                                                      const ToolSchemaLookup& toolSchema);

// Decodes an `=?base64?...?=` header value; other values are literal. nullopt: bad encoding.
std::optional<std::string> decodeHeaderValue(std::string_view value);

}  // namespace mcphost::transport
