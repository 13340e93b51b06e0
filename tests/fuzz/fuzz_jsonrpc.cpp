// Fuzzes the JSON-RPC/MCP message path: size/depth-limited parsing, message decoding and the
// 2026-07-28 envelope/header ladder. Any crash, leak or UB is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/json_rpc.hpp"
#include "transport/stateless_headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto json = mcphost::protocol::parseJson(text, {1U << 20, 64});
  if (!json) return 0;
  auto message = mcphost::protocol::decodeMessage(*json);
  if (!message) return 0;
  mcphost::transport::HeaderList headers = {{"MCP-Protocol-Version", "2026-07-28"},
                                            {"Mcp-Method", message->method},
                                            {"Mcp-Name", "=?base64?eA==?="}};
  auto schema = [](std::string_view) {
    return mcphost::protocol::Json::parse(R"({"properties":{"r":{"x-mcp-header":"R"}}})");
  };
  (void)mcphost::transport::validateStatelessRequest(&headers, *message, schema);
  (void)mcphost::transport::validateStatelessRequest(nullptr, *message, nullptr);
  return 0;
}
