#include <catch2/catch.hpp>
#include <thread>

#include "common/base64.hpp"
#include "common/crypto.hpp"
#include "protocol/request_state.hpp"

using namespace mcphost;
using mcphost::protocol::Json;
using mcphost::protocol::RequestStateCodec;

TEST_CASE("base64 round-trips and decodes strictly") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    CHECK(base64Decode(base64Encode(s)) == s);
    CHECK(base64UrlDecode(base64UrlEncode(s)) == s);
  }
  CHECK(base64Decode("SGVsbG8=") == std::string("Hello"));
  CHECK_FALSE(base64Decode("SGVsbG8"));      // missing padding
  CHECK_FALSE(base64Decode("SGVs!!!bG8="));  // bad characters
  CHECK_FALSE(base64Decode("SGVsbG9="));     // non-zero tail bits
  CHECK_FALSE(base64UrlDecode("a"));
}

TEST_CASE("random tokens are hex and distinct") {
  auto a = randomToken(16);
  auto b = randomToken(16);
  CHECK(a.size() == 32);
  CHECK(a != b);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("constant-time comparison") {
  CHECK(constantTimeEquals("abc", "abc"));
  CHECK_FALSE(constantTimeEquals("abc", "abd"));
  CHECK_FALSE(constantTimeEquals("abc", "abcd"));
}

TEST_CASE("requestState: sealed state opens only unmodified, for the same binding") {
  auto codec = RequestStateCodec::withRandomKey();
  Json state = {{"tool", "multi_round"}, {"round", 2}};
  std::string token = codec.seal(state, "tools/call:x");
  auto opened = codec.open(token, "tools/call:x");
  REQUIRE(opened);
  CHECK(*opened == state);
  CHECK_FALSE(codec.open(token + "-TAMPERED", "tools/call:x"));
  CHECK_FALSE(codec.open(token, "tools/call:y"));  // replay into another tool
  CHECK_FALSE(codec.open("garbage", "tools/call:x"));
  std::string flipped = token;
  flipped[5] = flipped[5] == 'A' ? 'B' : 'A';
  CHECK_FALSE(codec.open(flipped, "tools/call:x"));
  auto other = RequestStateCodec::withRandomKey();
  CHECK_FALSE(other.open(token, "tools/call:x"));  // another process's key
}

TEST_CASE("requestState expires") {
  RequestStateCodec codec(randomBytes(32), std::chrono::seconds(-1));
  auto token = codec.seal(Json{{"a", 1}}, "b");
  auto opened = codec.open(token, "b");
  REQUIRE_FALSE(opened);
  CHECK(opened.error().find("expired") != std::string::npos);
}
