#include "protocol/json_rpc.hpp"

#include <catch2/catch.hpp>

using namespace mcphost::protocol;

TEST_CASE("parseJson rejects malformed JSON with -32700") {
  auto r = parseJson("{\"jsonrpc\":", {});
  REQUIRE_FALSE(r);
  CHECK(r.error().error.code == errc::kParseError);
}

TEST_CASE("parseJson enforces the size limit") {
  ParseLimits limits{16, 64};
  auto r = parseJson(std::string(17, ' '), limits);
  REQUIRE_FALSE(r);
  CHECK(r.error().error.message.find("exceeds") != std::string::npos);
}

TEST_CASE("parseJson enforces the nesting limit without deep recursion") {
  std::string deep(100000, '[');
  auto r = parseJson(deep, {1 << 20, 64});
  REQUIRE_FALSE(r);
  CHECK(r.error().error.code == errc::kInvalidRequest);
  std::string ok = std::string(10, '[') + std::string(10, ']');
  CHECK(parseJson(ok, {1 << 20, 64}));
}

TEST_CASE("decodeMessage classifies requests, notifications and responses") {
  auto req = decodeMessage(Json::parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"));
  REQUIRE(req);
  CHECK(req->kind == MessageKind::kRequest);
  auto note = decodeMessage(Json::parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"));
  REQUIRE(note);
  CHECK(note->kind == MessageKind::kNotification);
  auto resp = decodeMessage(Json::parse(R"({"jsonrpc":"2.0","id":"a","result":{}})"));
  REQUIRE(resp);
  CHECK(resp->kind == MessageKind::kResponse);
  auto err = decodeMessage(Json::parse(R"({"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"x"}})"));
  REQUIRE(err);
  REQUIRE(err->error);
  CHECK(err->error->code == -1);
}

TEST_CASE("decodeMessage rejects invalid requests with -32600 and keeps the id") {
  const char* bad[] = {
      R"([])",
      R"({"id":1,"method":"ping"})",
      R"({"jsonrpc":"1.0","id":1,"method":"ping"})",
      R"({"jsonrpc":"2.0","id":1,"method":5})",
      R"({"jsonrpc":"2.0","id":1,"method":""})",
      R"({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})",
      R"({"jsonrpc":"2.0","id":1,"method":"ping","params":"str"})",
      R"({"jsonrpc":"2.0","id":1})",
      R"({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}})",
      R"({"jsonrpc":"2.0","id":1,"error":{"code":"x"}})",
  };
  for (const char* text : bad) {
    INFO(text);
    auto r = decodeMessage(Json::parse(text));
    REQUIRE_FALSE(r);
    CHECK(r.error().error.code == errc::kInvalidRequest);
  }
  auto r = decodeMessage(Json::parse(R"({"jsonrpc":"1.0","id":7,"method":"ping"})"));
  CHECK(r.error().id == 7);
}

TEST_CASE("response builders produce JSON-RPC 2.0 envelopes") {
  CHECK(makeResponse(1, Json::object()).dump() == R"({"id":1,"jsonrpc":"2.0","result":{}})");
  auto e = makeErrorResponse(nullptr, RpcError{-32601, "nope", {{"k", 1}}});
  CHECK(e["error"]["data"]["k"] == 1);
  CHECK(e["id"].is_null());
  CHECK_FALSE(makeNotification("n", nullptr).contains("params"));
}
