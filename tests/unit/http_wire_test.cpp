#include "transport/http_wire.hpp"

#include <catch2/catch.hpp>

using namespace mcphost::transport;

TEST_CASE("parseHead accepts a well-formed request head") {
  auto r = parseHead("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Length: 3\r\n\r\n");
  REQUIRE(r);
  CHECK(r->getMethod() == "POST");
  CHECK(r->getURI() == "/mcp");
  CHECK(r->getContentLength64() == 3);
}

TEST_CASE("parseHead rejects malformed heads") {
  CHECK_FALSE(parseHead("garbage\r\n\r\n"));
  CHECK_FALSE(parseHead("GET / HTTP/9.9\r\n\r\n"));
}

TEST_CASE("raw header fields keep encoded words untouched") {
  auto fields =
      rawHeaderFields("POST /mcp HTTP/1.1\r\nMcp-Param-Region:  =?base64?SGVsbG8=?= \r\nX: y\r\n\r\n");
  REQUIRE(fields.size() == 2);
  CHECK(findHeader(fields, "mcp-param-region") == std::string("=?base64?SGVsbG8=?="));
  CHECK_FALSE(findHeader(fields, "absent"));
}

TEST_CASE("chunked bodies decode incrementally with limits") {
  std::string body;
  std::size_t used = 0;
  const std::string full = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\nNEXT";
  REQUIRE(decodeChunked(full, 100, body, used) == ChunkedStatus::kComplete);
  CHECK(body == "Wikipedia");
  CHECK(full.substr(used) == "NEXT");
  CHECK(decodeChunked("4\r\nWi", 100, body, used) == ChunkedStatus::kNeedMore);
  CHECK(decodeChunked("zz\r\n", 100, body, used) == ChunkedStatus::kMalformed);
  CHECK(decodeChunked("4\r\nWikiXX", 100, body, used) == ChunkedStatus::kMalformed);
  CHECK(decodeChunked("ffffffff\r\n", 100, body, used) == ChunkedStatus::kTooLarge);
}

TEST_CASE("response heads and chunks serialize as HTTP/1.1") {
  auto head = serializeHead(202, {{"A", "b"}}, true, 0);
  CHECK(head.rfind("HTTP/1.1 202 Accepted\r\n", 0) == 0);
  CHECK(head.find("Content-Length: 0\r\n") != std::string::npos);
  CHECK(head.find("Connection: keep-alive") != std::string::npos);
  CHECK(serializeHead(200, {}, false, std::nullopt).find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(chunk("hello") == "5\r\nhello\r\n");
}

TEST_CASE("the chunked decoder accepts bytes one at a time in linear work") {
  ChunkedDecoder decoder;
  const std::string wire = "4\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  std::string in;
  ChunkedStatus status = ChunkedStatus::kNeedMore;
  std::size_t fed = 0;
  while (status == ChunkedStatus::kNeedMore && fed < wire.size()) {
    in += wire[fed++];
    status = decoder.feed(in, 100);
  }
  CHECK(status == ChunkedStatus::kComplete);
  CHECK(decoder.body == "Wikipedia");
  CHECK(in.empty());
  CHECK(wire.substr(fed) == "NEXT");
}

TEST_CASE("body framing is strict about Content-Length and Transfer-Encoding") {
  using Fields = std::vector<std::pair<std::string, std::string>>;
  CHECK(bodyFraming(Fields{{"Content-Length", "12"}}, "HTTP/1.1")->contentLength == 12);
  CHECK(bodyFraming(Fields{{"transfer-encoding", "Chunked"}}, "HTTP/1.1")->chunked);
  CHECK(bodyFraming(Fields{}, "HTTP/1.1")->contentLength == 0);
  CHECK(bodyFraming(Fields{{"Content-Length", "abc"}}, "HTTP/1.1").error().status == 400);
  CHECK(bodyFraming(Fields{{"Content-Length", "99999999999999999999"}}, "HTTP/1.1").error().status == 400);
  CHECK(bodyFraming(Fields{{"Content-Length", "0"}, {"Content-Length", "40"}}, "HTTP/1.1").error().status ==
        400);
  CHECK(bodyFraming(Fields{{"Transfer-Encoding", "gzip, chunked"}}, "HTTP/1.1").error().status == 501);
  CHECK(bodyFraming(Fields{{"Transfer-Encoding", "chunked"}, {"Content-Length", "4"}}, "HTTP/1.1")
            .error()
            .status == 400);
  CHECK(bodyFraming(Fields{{"Transfer-Encoding", "chunked"}}, "HTTP/1.0").error().status == 400);
}

TEST_CASE("header lines must be well formed") {
  CHECK(headerLinesWellFormed("POST / HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n"));
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"));
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"));
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\nno colon here\r\n\r\n"));
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\n: empty name\r\n\r\n"));
}

TEST_CASE("bare CR or LF inside a head is refused") {
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n"));
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\nX-A: a\rb\r\n\r\n"));
  using namespace std::string_literals;
  CHECK_FALSE(headerLinesWellFormed("POST / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"s));
}
