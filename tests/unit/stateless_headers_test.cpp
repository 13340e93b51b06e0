#include "transport/stateless_headers.hpp"

#include <catch2/catch.hpp>

using namespace mcphost::transport;
using mcphost::protocol::Json;
using mcphost::protocol::Message;
namespace errc = mcphost::protocol::errc;

namespace {

Message toolCall(Json args = Json::object(), std::string version = "2026-07-28") {
  Message m;
  m.id = 1;
  m.method = "tools/call";
  m.params = {{"name", "echo"},
              {"arguments", std::move(args)},
              {"_meta",
               {{"io.modelcontextprotocol/protocolVersion", std::move(version)},
                {"io.modelcontextprotocol/clientCapabilities", Json::object()}}}};
  return m;
}

HeaderList goodHeaders() {
  return {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}};
}

const ToolSchemaLookup kSchema = [](std::string_view) {
  return Json{{"type", "object"},
              {"properties", {{"region", {{"type", "string"}, {"x-mcp-header", "Region"}}}}}};
};

}  // namespace

TEST_CASE("a complete 2026-07-28 request passes the ladder") {
  auto headers = goodHeaders();
  CHECK_FALSE(validateStatelessRequest(&headers, toolCall(), kSchema));
}

TEST_CASE("rung 1: a missing envelope is -32602 with the missing keys") {
  Message m = toolCall();
  m.params.erase("_meta");
  auto headers = goodHeaders();
  auto f = validateStatelessRequest(&headers, m, kSchema);
  REQUIRE(f);
  CHECK(f->error.code == errc::kInvalidParams);
  CHECK(f->error.data["envelope"]["missing"][0] == "_meta");
}

TEST_CASE("rungs 2-6: header mismatches are 400 -32020") {
  auto check = [](const HeaderList& headers, const Message& m = toolCall()) {
    auto f = validateStatelessRequest(&headers, m, kSchema);
    REQUIRE(f);
    CHECK(f->httpStatus == 400);
    CHECK(f->error.code == errc::kHeaderMismatch);
  };
  check({{"MCP-Protocol-Version", "2025-11-25"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}});
  check({{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "TOOLS/CALL"}, {"Mcp-Name", "echo"}});
  check({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}});
  check({{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Name", "echo"}});
  check({{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}});
  check({{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "other"}});
}

TEST_CASE("rung 4: an unserved version is -32022 with the supported list") {
  HeaderList headers = {
      {"MCP-Protocol-Version", "v999.0.0"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}};
  auto f = validateStatelessRequest(&headers, toolCall(Json::object(), "v999.0.0"), kSchema);
  REQUIRE(f);
  CHECK(f->error.code == errc::kUnsupportedProtocolVersion);
  CHECK(f->error.data["supported"][0] == "2026-07-28");
  CHECK(f->error.data["requested"] == "v999.0.0");
}

TEST_CASE("Mcp-Name and Mcp-Param accept base64 words and whitespace") {
  HeaderList headers = {{"MCP-Protocol-Version", "2026-07-28"},
                        {"Mcp-Method", "tools/call"},
                        {"Mcp-Name", "=?base64?ZWNobw==?="},
                        {"Mcp-Param-Region", "=?base64?SGVsbG8=?="}};
  CHECK_FALSE(validateStatelessRequest(&headers, toolCall({{"region", "Hello"}}), kSchema));
  headers.back().second = "=?base64?SGVsbG8?=";  // bad padding
  CHECK(validateStatelessRequest(&headers, toolCall({{"region", "Hello"}}), kSchema));
  headers.back().second = "=?base64?SGVsbG8=";  // no wrapper end: literal
  CHECK_FALSE(validateStatelessRequest(&headers, toolCall({{"region", "=?base64?SGVsbG8="}}), kSchema));
  headers.pop_back();  // header absent while the body has the argument
  CHECK(validateStatelessRequest(&headers, toolCall({{"region", "Hello"}}), kSchema));
}

TEST_CASE("stdio requests skip header rungs but not the envelope or version") {
  CHECK_FALSE(validateStatelessRequest(nullptr, toolCall(), nullptr));
  CHECK(validateStatelessRequest(nullptr, toolCall(Json::object(), "2030-01-01"), nullptr));
}

TEST_CASE("decodeHeaderValue") {
  CHECK(decodeHeaderValue("plain") == std::string("plain"));
  CHECK(decodeHeaderValue("=?base64?SGVsbG8=?=") == std::string("Hello"));
  CHECK_FALSE(decodeHeaderValue("=?base64?SGVs!!!bG8=?="));
}
