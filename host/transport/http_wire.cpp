#include "transport/http_wire.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/String.h>

#include <algorithm>
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
  return request;
}

bool headerLinesWellFormed(std::string_view head) {
  static constexpr std::string_view kTokenChars = "!#$%&'*+-.^_`|~";
  // Lines end with CRLF only: a bare CR or LF would be a line end for some parsers (Poco's,
  // perhaps a proxy's) and part of a value for others, which is how requests get smuggled.
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) return false;
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) return false;
    if (head[i] == '\0') return false;
  }
  std::size_t pos = head.find("\r\n");
  if (pos == std::string_view::npos) return false;
  for (;;) {
    pos += 2;
    const auto end = head.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) return true;  // the blank line ends the head
    const std::string_view line = head.substr(pos, end - pos);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    for (char c : line.substr(0, colon)) {
      const bool token =
          std::isalnum(static_cast<unsigned char>(c)) != 0 || kTokenChars.find(c) != std::string_view::npos;
      if (!token) return false;  // also rejects folding (leading SP/HT) and "Name :"
    }
    pos = end;
  }
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

Expected<BodyFraming, FramingError> bodyFraming(
    const std::vector<std::pair<std::string, std::string>>& fields, const std::string& httpVersion) {
  std::vector<std::string> transferEncodings;
  std::vector<std::string> contentLengths;
  for (const auto& [name, value] : fields) {
    if (Poco::icompare(name, "Transfer-Encoding") == 0) transferEncodings.push_back(value);
    if (Poco::icompare(name, "Content-Length") == 0) contentLengths.push_back(value);
  }
  BodyFraming framing;
  if (!transferEncodings.empty()) {
    if (httpVersion == Poco::Net::HTTPMessage::HTTP_1_0) {
      return unexpected(FramingError{400, "Transfer-Encoding is not allowed in HTTP/1.0 requests"});
    }
    if (transferEncodings.size() != 1 || Poco::icompare(transferEncodings[0], "chunked") != 0) {
      return unexpected(FramingError{501, "only 'Transfer-Encoding: chunked' is supported"});
    }
    if (!contentLengths.empty()) {
      // RFC 9112 6.3: both together are a request-smuggling vector.
      return unexpected(FramingError{400, "Content-Length together with Transfer-Encoding is not allowed"});
    }
    framing.chunked = true;
    return framing;
  }
  if (contentLengths.size() > 1) return unexpected(FramingError{400, "more than one Content-Length header"});
  if (contentLengths.size() == 1) {
    const std::string& v = contentLengths[0];
    std::size_t length = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
    if (v.empty() || v.size() > 18 || ec != std::errc() || ptr != v.data() + v.size()) {
      return unexpected(FramingError{400, "Content-Length must be a decimal number of bytes"});
    }
    framing.contentLength = length;
  }
  return framing;
}

ChunkedStatus ChunkedDecoder::feed(std::string& in, std::size_t maxBody) {
  std::size_t pos = 0;
  ChunkedStatus status = ChunkedStatus::kNeedMore;
  bool progress = true;
  while (progress && status == ChunkedStatus::kNeedMore) {
    progress = false;
    switch (state_) {
      case State::kSize: {
        const auto eol = in.find("\r\n", pos);
        if (eol == std::string::npos) {
          if (in.size() - pos > 1024) status = ChunkedStatus::kMalformed;  // no sane size line is this long
          break;
        }
        std::string_view field(in.data() + pos, eol - pos);
        if (auto semi = field.find(';'); semi != std::string_view::npos) field = field.substr(0, semi);
        while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) field.remove_suffix(1);
        std::size_t size = 0;
        auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), size, 16);
        if (field.empty() || ec != std::errc() || ptr != field.data() + field.size()) {
          status = ChunkedStatus::kMalformed;
          break;
        }
        pos = eol + 2;
        if (size == 0) {
          state_ = State::kTrailer;
        } else if (size > maxBody || body.size() + size > maxBody) {
          status = ChunkedStatus::kTooLarge;
          break;
        } else {
          remaining_ = size;
          state_ = State::kData;
        }
        progress = true;
        break;
      }
      case State::kData: {
        const std::size_t n = std::min(remaining_, in.size() - pos);
        body.append(in, pos, n);
        pos += n;
        remaining_ -= n;
        if (remaining_ == 0) {
          state_ = State::kDataEnd;
          progress = true;
        }
        break;
      }
      case State::kDataEnd:
        if (in.size() - pos < 2) break;
        if (in.compare(pos, 2, "\r\n") != 0) {
          status = ChunkedStatus::kMalformed;
          break;
        }
        pos += 2;
        state_ = State::kSize;
        progress = true;
        break;
      case State::kTrailer: {
        const auto eol = in.find("\r\n", pos);
        if (eol == std::string::npos) {
          if (in.size() - pos > 8192) status = ChunkedStatus::kMalformed;
          break;
        }
        const bool last = eol == pos;
        pos = eol + 2;
        if (last) {
          state_ = State::kDone;
          status = ChunkedStatus::kComplete;
        }
        progress = true;
        break;
      }
      case State::kDone:
        status = ChunkedStatus::kComplete;
        break;
    }
  }
  in.erase(0, pos);
  return status;
}

ChunkedStatus decodeChunked(std::string_view in, std::size_t maxBody, std::string& body,
                            std::size_t& consumed) {
  ChunkedDecoder decoder;
  std::string rest(in);
  const ChunkedStatus status = decoder.feed(rest, maxBody);
  consumed = in.size() - rest.size();
  body = std::move(decoder.body);
  return status;
}

std::string serializeHead(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          bool keepAlive, std::optional<std::size_t> contentLength) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " +
      Poco::Net::HTTPResponse::getReasonForStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status)) +
      "\r\n";
  for (const auto& [name, value] : headers) out.append(name).append(": ").append(value).append("\r\n");
  if (status == 204 || status == 304) {
    // RFC 9110: these responses have no body and no Content-Length.
  } else if (contentLength) {
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
