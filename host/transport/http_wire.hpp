// HTTP/1.1 wire helpers: parsing a request head (through Poco), decoding a chunked body and
// serializing response heads and chunks. Pure functions, so they are unit-tested and fuzzed.
#pragma once

#include <Poco/Net/HTTPRequest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::transport {

Expected<Poco::Net::HTTPRequest, std::string> parseHead(std::string_view head);

// RFC 9112 field syntax: every line is `token ":" value`, no whitespace before the colon, no
// obsolete line folding. Lenient parsing here is what request smuggling feeds on.
bool headerLinesWellFormed(std::string_view head);

// The header fields of a request head exactly as sent (Poco decodes RFC 2047 words such as
// `=?base64?...?=` while parsing, which MCP's Mcp-Name/Mcp-Param-* comparisons must not see).
std::vector<std::pair<std::string, std::string>> rawHeaderFields(std::string_view head);
// Case-insensitive lookup in raw header fields; values are trimmed of spaces and tabs.
std::optional<std::string> findHeader(const std::vector<std::pair<std::string, std::string>>& fields,
                                      std::string_view name);

// How the request body is framed, decided from the raw header fields with the strictness
// RFC 9112 section 6 asks of a server that may sit behind a proxy (no smuggling ambiguity).
struct BodyFraming {
  bool chunked = false;
  std::size_t contentLength = 0;
};
struct FramingError {
  int status = 400;
  std::string message;
};
Expected<BodyFraming, FramingError> bodyFraming(
    const std::vector<std::pair<std::string, std::string>>& fields, const std::string& httpVersion);

enum class ChunkedStatus { kComplete, kNeedMore, kTooLarge, kMalformed };

// Incremental chunked-body decoder: feed() consumes what it can from the front of `in`, so the
// total work is linear in the body size however the bytes arrive.
class ChunkedDecoder {
 public:
  ChunkedStatus feed(std::string& in, std::size_t maxBody);
  std::string body;

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  std::size_t remaining_ = 0;
};

// Decodes a complete chunked body from the front of `in`; `consumed` is how many bytes it used.
ChunkedStatus decodeChunked(std::string_view in, std::size_t maxBody, std::string& body,
                            std::size_t& consumed);

std::string serializeHead(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          bool keepAlive, std::optional<std::size_t> contentLength);
std::string chunk(std::string_view data);

}  // namespace mcphost::transport
