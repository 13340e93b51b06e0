#include "common/json_schema.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

using mcphost::JsonSchema;
using mcphost::SchemaViolation;
using nlohmann::json;

namespace {

JsonSchema compiled(const char* schema) {
  auto s = JsonSchema::compile(json::parse(schema));
  INFO((s ? std::string() : s.error()));
  REQUIRE(s);
  return std::move(*s);
}

std::string compileError(const json& schema) {
  auto s = JsonSchema::compile(schema);
  return s ? std::string() : s.error();
}

bool has(const std::vector<SchemaViolation>& violations, const std::string& path,
         const std::string& message) {
  for (const auto& v : violations) {
    if (v.path == path && v.message.find(message) != std::string::npos) return true;
  }
  for (const auto& v : violations) UNSCOPED_INFO(v.path << ": " << v.message);
  return false;
}

const char* kPool = R"({"type": "object", "additionalProperties": false, "properties": {
  "pool": {"type": "object", "required": ["size"], "properties": {
    "size": {"type": "integer", "minimum": 1, "maximum": 100},
    "mode": {"enum": ["require", "prefer"]},
    "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2},
    "when": {"format": "date-time"},
    "step": {"multipleOf": 0.5},
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 2}}}}})";

}  // namespace

TEST_CASE("violations name the JSON pointer and what the schema expects") {
  auto s = compiled(kPool);
  CHECK(s.validate(json::parse(R"({"pool": {"size": 5, "mode": "prefer", "name": "abc",
      "when": "2024-02-29T10:00:00Z", "step": 1.5, "tags": ["a"]}})"))
            .empty());
  CHECK(s.validate(json::parse(R"({"pool": {"size": 5.0}})")).empty());  // 5.0 is an integer
  auto v = s.validate(json::parse(R"({"pool": {"size": 0, "mode": "x", "name": "A",
      "when": "2023-02-29T10:00:00Z", "step": 0.3, "tags": ["a", "a", "b"]}, "extra": 1})"),
                      50);
  CHECK(has(v, "/pool/size", "must be >= 1"));
  CHECK(has(v, "/pool/mode", "must be one of: \"require\", \"prefer\""));
  CHECK(has(v, "/pool/name", "must match the pattern ^[a-z]+$"));
  CHECK(has(v, "/pool/name", "must be at least 2 characters long"));
  CHECK(has(v, "/pool/when", "must be a valid date-time"));
  CHECK(has(v, "/pool/step", "must be a multiple of 0.5"));
  CHECK(has(v, "/pool/tags", "must have at most 2 items"));
  CHECK(has(v, "/pool/tags", "items must be unique"));
  CHECK(has(v, "", "unknown property 'extra'"));
  CHECK(has(s.validate(json::parse(R"({"pool": {"size": "5"}})")), "/pool/size",
            "must be integer (got string)"));
  CHECK(has(s.validate(json::parse(R"({"pool": {}})")), "/pool", "missing required property 'size'"));
  CHECK(s.validate(json::parse(R"({"pool": {"size": 0, "mode": "x", "name": "A"}})"), 2).size() == 2);
  // Messages never echo the value, which may be a secret.
  for (const auto& violation : s.validate(json::parse(R"({"pool": {"size": 1, "name": "Sup3rSecret"}})"))) {
    CHECK(violation.message.find("Sup3rSecret") == std::string::npos);
  }
}

TEST_CASE("pointers escape ~ and /, and patternProperties work with $ref") {
  auto esc = compiled(R"({"properties": {"a/b": {"properties": {"c~d": {"type": "string"}}}}})");
  CHECK(has(esc.validate(json::parse(R"({"a/b": {"c~d": 1}})")), "/a~1b/c~0d", "must be string"));
  auto pp = compiled(R"({"definitions": {"port": {"type": "integer", "maximum": 65535}},
    "properties": {"name": {"type": "string"}}, "additionalProperties": false,
    "patternProperties": {"^port_": {"$ref": "#/definitions/port"}, "^x-": true}})");
  CHECK(pp.validate(json::parse(R"({"name": "a", "port_http": 80, "x-note": {}})")).empty());
  auto v = pp.validate(json::parse(R"({"name": "a", "port_http": 70000, "other": 1})"));
  CHECK(has(v, "/port_http", "must be <= 65535"));
  CHECK(has(v, "", "unknown property 'other'"));
  auto tree = compiled(R"({"type": "object", "patternProperties": {"^n": {"$ref": "#"}},
    "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}})");
  CHECK(has(tree.validate(json::parse(R"({"na": {"nb": {"children": [1]}}})")), "/na/nb/children/0",
            "must be object"));
}

TEST_CASE("bad schemas are refused with the schema location") {
  CHECK(compileError(json::parse(R"({"properties": {"p": {"minimum": "x"}}})")) ==
        "/properties/p/minimum: must be a number");
  CHECK(compileError(json::parse(R"({"multipleOf": 0})")) == "/multipleOf: must be a number greater than 0");
  CHECK(compileError(json::parse(R"({"type": "int"})")).rfind("/type: must be a type name", 0) == 0);
  CHECK(compileError(json::parse(R"({"pattern": "(["})"))
            .rfind("/pattern: is not a valid regular expression", 0) == 0);
  CHECK(compileError(json::parse(R"({"required": "x"})")) == "/required: must be an array of strings");
  CHECK(compileError(json::parse(R"({"unevaluatedProperties": false})")).find("is not supported") !=
        std::string::npos);
  CHECK(JsonSchema::compile(json::parse(R"({"unevaluatedProperties": false})"), {/*strict=*/false}));
  CHECK_FALSE(JsonSchema::compile(json(42)));
}

TEST_CASE("hostile schemas cannot recurse forever, overflow the stack or reach the network") {
  CHECK(compileError(json::parse(R"({"$ref": "#"})")).find("endless recursion") != std::string::npos);
  CHECK(compileError(json::parse(R"({"allOf": [{"$ref": "#"}]})")).find("endless recursion") !=
        std::string::npos);
  CHECK(compileError(json::parse(R"({"definitions": {"a": {"$ref": "#/definitions/b"},
      "b": {"not": {"$ref": "#/definitions/a"}}}, "$ref": "#/definitions/a"})"))
            .find("endless recursion") != std::string::npos);
  CHECK(
      compileError(json::parse(R"({"$ref": "http://evil.example/s.json"})")).find("only local references") !=
      std::string::npos);
  CHECK(compileError(json::parse(R"({"$ref": "#/nowhere"})")).find("does not resolve") != std::string::npos);
  json deep = json::object();
  json* cur = &deep;
  for (int i = 0; i < 100000; ++i) cur = &((*cur)["not"] = json::object());
  CHECK(compileError(deep) == "the schema is nested deeper than 64 levels");
  json chain = {{"$ref", "#/definitions/a0"}};
  for (int i = 0; i < 100; ++i) {
    chain["definitions"]["a" + std::to_string(i)] = {
        {"allOf", {{{"$ref", "#/definitions/a" + std::to_string(i + 1)}}}}};
  }
  chain["definitions"]["a100"] = {{"type", "string"}};
  CHECK(compileError(chain).find("apply to one value in a chain") != std::string::npos);
}

TEST_CASE("hostile values and expensive schemas are bounded") {
  // Each level applies the next one three times: 3^11 evaluations without the step limit.
  json blowup = {{"$ref", "#/definitions/a0"}};
  for (int i = 0; i < 11; ++i) {
    const json next = {{"$ref", "#/definitions/a" + std::to_string(i + 1)}};
    blowup["definitions"]["a" + std::to_string(i)] = {{"allOf", {next, next, next}}};
  }
  blowup["definitions"]["a11"] = {{"type", "string"}};
  auto b = JsonSchema::compile(blowup);
  REQUIRE(b);
  CHECK(has(b->validate("x"), "", "the schema is too complex"));

  // PCRE with limits instead of std::regex: no stack overflow on long strings or long keys, and
  // catastrophic backtracking ends quickly.
  auto patterns = compiled(R"({"properties": {"a": {"pattern": "^(a|b)*$"}, "d": {"format": "date"},
    "r": {"pattern": "^(a|a)*b$"}}, "patternProperties": {".*": {"type": "string"}}})");
  const std::string big(std::size_t{4} << 20, 'a');
  auto v = patterns.validate(
      json{{"a", big}, {"d", std::string(1 << 20, '1')}, {"r", std::string(40, 'a')}, {big, 1}});
  CHECK(has(v, "/a", "could not be checked against the pattern"));
  CHECK(has(v, "/d", "must be a valid date"));
  CHECK(has(v, "/r", "pattern"));
  CHECK(has(v, "/" + big, "must be string (got integer)"));

  auto tree = compiled(R"({"type": "object", "properties": {"c": {"$ref": "#"}}})");
  json value = json::object();
  json* cur = &value;
  for (int i = 0; i < 100; ++i) cur = &((*cur)["c"] = json::object());
  CHECK(has(tree.validate(value), "", "nested deeper than 64 levels"));
}

TEST_CASE("one compiled schema validates from many threads") {
  auto s = compiled(kPool);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!s.validate(json::parse(R"({"pool": {"size": 3, "name": "ok"}})")).empty()) ++wrong;
        if (s.validate(json::parse(R"({"pool": {"size": 0, "name": "NO"}})")).size() != 2) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
}
