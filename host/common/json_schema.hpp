// JSON Schema (draft-07, plus the 2020-12 spellings that mean the same) validation for data that
// crosses a trust boundary: connector config against a manifest's schema, and tool arguments
// against a tool's inputSchema. Both the schema and the value may come from a hostile party, so
// compile() refuses schemas that could crash or stall the host (deep nesting, $ref loops that
// consume no input, remote $refs, invalid regular expressions) and validate() is bounded in
// recursion depth and work.
//
// Regular expressions ("pattern", "patternProperties") run on PCRE with its JIT, a match limit and
// a bounded stack instead of std::regex, whose backtracking recurses once per input character.
// Messages never echo the value being validated (it may be a secret); they name the JSON pointer
// of the offending value and what the schema expects, e.g. {"/pool/size", "must be >= 1"}.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace mcphost {

struct SchemaViolation {
  std::string path;  // JSON pointer of the offending value, "" for the whole document
  std::string message;
};

struct SchemaOptions {
  // Refuse keywords that this validator would silently ignore (unevaluatedProperties,
  // prefixItems, $dynamicRef, ...): a config schema that says "no other keys" must not be
  // weakened without anyone noticing. Off, they are dropped (the schema accepts more).
  bool strict = true;
};

class JsonSchema {
 public:
  static constexpr std::size_t kMaxSchemaDepth = 64;      // JSON nesting of the schema document
  static constexpr std::size_t kMaxSchemaNodes = 10000;   // subschemas in one document
  static constexpr std::size_t kMaxApplicatorChain = 24;  // allOf/anyOf/$ref/... on one value
  static constexpr std::size_t kMaxInstanceDepth = 64;    // JSON nesting of a validated value
  static constexpr std::size_t kMaxSteps = 200000;        // subschema evaluations per validate()
  static constexpr std::size_t kMaxViolations = 10;

  // The error says where in the schema the problem is ("/properties/port/minimum: ...").
  static Expected<JsonSchema, std::string> compile(const nlohmann::json& schema, SchemaOptions options = {});

  // Empty when the instance is valid. Thread-safe: one compiled schema serves many callers.
  [[nodiscard]] std::vector<SchemaViolation> validate(const nlohmann::json& instance,
                                                      std::size_t maxViolations = kMaxViolations) const;

  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;
  ~JsonSchema();

 private:
  struct Impl;
  explicit JsonSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // keeps valijson and PCRE out of this header
};

}  // namespace mcphost
