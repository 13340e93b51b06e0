#include "transport/http_wire.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/String.h>

#include <charconv>
#include <sstream>

namespace mcphost::transport {

Expected<Poco::Net::HTTPRequest, std::string> parseHead(std::string_view head) {
  Poco::Net::HTTPRequest request;
  try {
    std::istringstream stream{std::string(head)};
    request.read(stream);
  } catch (const Poco::Exception& e) {
    return unexpected("malformed HTTP request head: " + e.displayText());
  } catch (const std::exception& e) {
    return unexpected(std::string("malformed HTTP request head: ") + e.what());
  }
  if (request.getMethod().empty() || request.getURI().empty()) {
    return unexpected(std::string("malformed HTTP request line"));
  }
  if (request.getVersion() != Poco::Net::HTTPMessage::HTTP_1_1 &&
      request.getVersion() != Poco::Net::HTTPMessage::HTTP_1_0) {
    return unexpected("unsupported HTTP version " + request.getVersion());
  }
  if (request.getChunkedTransferEncoding() && request.hasContentLength()) {
    // RFC 9112 6.3: both together are a request-smuggling vector.
    return unexpected(std::string("Content-Length together with Transfer-Encoding is not allowed"));
  }
  return request;
}

std::vector<std::pair<std::string, std::string>> rawHeaderFields(std::string_view head) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t pos = head.find("\r\n");  // skip the request line
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    pos += 2;
    const auto end = head.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) break;
    const std::string_view line = head.substr(pos, end - pos);
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      fields.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    pos = end;
  }
  return fields;
}

std::optional<std::string> findHeader(const std::vector<std::pair<std::string, std::string>>& fields,
                                      std::string_view name) {
  for (const auto& [key, value] : fields) {
    if (Poco::icompare(key, std::string(name)) == 0) return value;
  }
  return std::nullopt;
}

ChunkedStatus decodeChunked(std::string_view in, std::size_t maxBody, std::string& body,
                            std::size_t& consumed) {
  body.clear();
  std::size_t pos = 0;
  for (;;) {
    const auto lineEnd = in.find("\r\n", pos);
    if (lineEnd == std::string_view::npos)
      return in.size() - pos > 1024 ? ChunkedStatus::kMalformed : ChunkedStatus::kNeedMore;
    std::string_view sizeField = in.substr(pos, lineEnd - pos);
    if (auto semi = sizeField.find(';'); semi != std::string_view::npos)
      sizeField = sizeField.substr(0, semi);
    while (!sizeField.empty() && (sizeField.back() == ' ' || sizeField.back() == '\t'))
      sizeField.remove_suffix(1);
    std::size_t size = 0;
    auto [ptr, ec] = std::from_chars(sizeField.data(), sizeField.data() + sizeField.size(), size, 16);
    if (sizeField.empty() || ec != std::errc() || ptr != sizeField.data() + sizeField.size()) {
      return ChunkedStatus::kMalformed;
    }
    pos = lineEnd + 2;
    if (size == 0) {
      // Trailer fields, then an empty line.
      for (;;) {
        const auto end = in.find("\r\n", pos);
        if (end == std::string_view::npos) return ChunkedStatus::kNeedMore;
        const bool empty = end == pos;
        pos = end + 2;
        if (empty) {
          consumed = pos;
          return ChunkedStatus::kComplete;
        }
      }
    }
    if (size > maxBody || body.size() + size > maxBody) return ChunkedStatus::kTooLarge;
    if (in.size() < pos + size + 2) return ChunkedStatus::kNeedMore;
    if (in.substr(pos + size, 2) != "\r\n") return ChunkedStatus::kMalformed;
    body.append(in.substr(pos, size));
    pos += size + 2;
  }
}

std::string serializeHead(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          bool keepAlive, std::optional<std::size_t> contentLength) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " +
      Poco::Net::HTTPResponse::getReasonForStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status)) +
      "\r\n";
  for (const auto& [name, value] : headers) out.append(name).append(": ").append(value).append("\r\n");
  if (contentLength) {
    out += "Content-Length: " + std::to_string(*contentLength) + "\r\n";
  } else {
    out += "Transfer-Encoding: chunked\r\n";
  }
  out += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string chunk(std::string_view data) {
  char size[20];
  auto [ptr, ec] = std::to_chars(size, size + sizeof size, data.size(), 16);
  std::string out(size, ptr);
  out.append("\r\n").append(data).append("\r\n");
  return out;
}

}  // namespace mcphost::transport
