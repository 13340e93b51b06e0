// Internal to json_schema.cpp: the walk over a schema document that happens before valijson sees
// it. It refuses documents that could crash or stall the validator and rewrites the rest so that
// the keywords valijson handles unsafely (pattern, patternProperties and format run std::regex,
// whose backtracking recurses once per input character; integer multipleOf divides by zero) or
// with unhelpful messages (type, enum, const) are checked by SchemaChecks instead: every schema
// object gets one custom keyword whose value indexes `checks`.
#pragma once

#include <pcre.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/json_schema.hpp"

namespace mcphost::detail {

inline constexpr const char* kChecksKeyword = "x-mcphost-checks";

// PCRE with its JIT, a match limit and a bounded per-thread JIT stack, so that catastrophic
// backtracking ends as kTooExpensive instead of a stalled or crashed host.
class Regex {
  struct Private {};

 public:
  enum class Match { kYes, kNo, kTooExpensive };
  static std::shared_ptr<const Regex> compile(const std::string& source, std::string& error);
  [[nodiscard]] Match search(const std::string& subject) const;

  Regex(Private /*only compile()*/, pcre* re);
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

 private:
  pcre* re_;
  pcre_extra* studied_ = nullptr;
  pcre_extra own_{};  // used when pcre_study() has nothing to add
  pcre_extra* extra_ = nullptr;
};

// What a patternProperties entry or additionalProperties applies to a matching property.
struct SchemaTarget {
  enum Kind { kAny, kNothing, kSchema } kind = kAny;
  std::string pointer;  // kSchema: JSON pointer inside the rewritten document
};

struct SchemaChecks {
  std::vector<std::string> types;  // empty: any type
  std::optional<nlohmann::json> enumValues;
  std::optional<nlohmann::json> constValue;
  std::string patternSource;
  std::shared_ptr<const Regex> pattern;
  std::string format;  // date, time and date-time are asserted; other formats are annotations
  std::optional<double> multipleOf;
  // Set when the schema object has patternProperties: these checks then own additionalProperties
  // too, because which properties are "additional" depends on the patterns.
  bool ownsProperties = false;
  std::set<std::string> namedProperties;
  struct Pattern {
    std::string source;
    std::shared_ptr<const Regex> regex;
    SchemaTarget target;
  };
  std::vector<Pattern> patternProperties;
  SchemaTarget additional;
};

struct RewrittenSchema {
  nlohmann::json document;  // $refs rewritten to "#/d/...": valijson parses {"$ref":..., "d": document}
  std::vector<std::shared_ptr<const SchemaChecks>> checks;
};

// Errors name the schema location: "/properties/port/pattern: is not a valid regular expression".
Expected<RewrittenSchema, std::string> rewriteSchema(const nlohmann::json& schema, SchemaOptions options);

}  // namespace mcphost::detail
