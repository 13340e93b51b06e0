// JSON-RPC 2.0 message model and a strict parser with size and nesting limits.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace mcphost::protocol {

using Json = nlohmann::json;

// JSON-RPC and MCP error codes used by the host.
namespace errc {
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kRequestTimeout = -32001;
inline constexpr int kResourceNotFound = -32002;
inline constexpr int kHeaderMismatch = -32020;              // 2026-07-28
inline constexpr int kMissingRequiredCapability = -32021;   // 2026-07-28
inline constexpr int kUnsupportedProtocolVersion = -32022;  // 2026-07-28
}  // namespace errc

struct RpcError {
  int code = errc::kInternalError;
  std::string message;
  Json data;  // null when absent

  [[nodiscard]] Json toJson() const;
};

enum class MessageKind { kRequest, kNotification, kResponse };

// One decoded JSON-RPC message. For responses, exactly one of result/error is set.
struct Message {
  MessageKind kind = MessageKind::kRequest;
  Json id;  // string or integer for requests and responses; null for notifications
  std::string method;
  Json params;  // object, array or null (absent)
  Json result;
  std::optional<RpcError> error;
};

struct ParseLimits {
  std::size_t maxBytes = std::size_t{4} << 20;
  int maxDepth = 64;
};

// A parse failure carries the id when one could be recovered, so the error response can echo it.
struct ParseFailure {
  RpcError error;
  Json id;
};

// Parses raw text into JSON, enforcing size and depth limits. Never throws.
Expected<Json, ParseFailure> parseJson(std::string_view text, const ParseLimits& limits);

// Validates one JSON value as a JSON-RPC 2.0 message. Batches are rejected by the caller.
Expected<Message, ParseFailure> decodeMessage(const Json& value);

Json makeResponse(const Json& id, Json result);
Json makeErrorResponse(const Json& id, const RpcError& error);
Json makeNotification(std::string_view method, Json params);
Json makeRequest(const Json& id, std::string_view method, Json params);

}  // namespace mcphost::protocol
