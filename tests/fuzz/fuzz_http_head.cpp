// Fuzzes the HTTP wire layer: request-head parsing (Poco), raw header extraction, chunked body
// decoding and header-value decoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transport/http_wire.hpp"
#include "transport/stateless_headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto split = text.find("\r\n\r\n");
  const std::string_view head = split == std::string_view::npos ? text : text.substr(0, split + 4);
  (void)mcphost::transport::parseHead(head);
  auto fields = mcphost::transport::rawHeaderFields(head);
  for (const auto& [name, value] : fields) (void)mcphost::transport::decodeHeaderValue(value);
  if (split != std::string_view::npos) {
    std::string body;
    std::size_t used = 0;
    (void)mcphost::transport::decodeChunked(text.substr(split + 4), 1U << 16, body, used);
  }
  return 0;
}
