// valijson does the JSON Schema semantics; json_schema_rewrite.cpp keeps it safe and this file
// adds the checks it took away from valijson, as one custom constraint per schema object.
#define VALIJSON_USE_EXCEPTIONS 1  // before any valijson header: its errors throw instead of abort()

#include "common/json_schema.hpp"

#include <Poco/Thread.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>  // valijson/exceptions.hpp includes it inside its namespace unless seen before
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/constraint_builder.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "common/json_schema_rewrite.hpp"

namespace mcphost {

namespace {

using Json = nlohmann::json;
using detail::Regex;
using detail::SchemaChecks;
using detail::SchemaTarget;
using valijson::adapters::Adapter;
using valijson::adapters::NlohmannJsonAdapter;
using Context = std::vector<std::string>;  // valijson's instance path: "<root>", "[name]", "[0]"
using SubschemaTable = std::map<std::string, std::unique_ptr<valijson::Schema>>;

// valijson's parser recurses once per schema level and, through $refs, once per subschema on a
// chain; kMaxSchemaNodes subschemas need more than a default 8 MiB stack in debug and ASan builds.
constexpr int kCompileStackBytes = 256 << 20;  // address space only; pages are touched as used

struct StepLimitReached {};
thread_local std::size_t* tlStepsLeft = nullptr;  // set by validate(), counted by CheckConstraint

// Shortens text for a message without splitting a UTF-8 sequence (the message may become JSON).
std::string clip(std::string s, std::size_t max = 40) {
  if (s.size() <= max) return s;
  std::size_t cut = max - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}
std::string shortDump(const Json& v) {
  return clip(v.dump(-1, ' ', false, Json::error_handler_t::replace));
}
std::string number(double d) {
  std::ostringstream out;
  out << std::setprecision(15) << d;
  return out.str();
}
std::string typeOf(const Adapter& v) {
  if (v.isNull()) return "null";
  if (v.isBool()) return "boolean";
  if (v.isInteger()) return "integer";
  if (v.isNumber()) return "number";
  if (v.isString()) return "string";
  return v.isArray() ? "array" : "object";
}
bool hasType(const Adapter& v, const std::string& t) {
  double d = 0;
  if (t == "integer")
    return v.isInteger() || (v.isDouble() && v.getDouble(d) && std::isfinite(d) && std::trunc(d) == d);
  return t == "number" ? v.isNumber() : typeOf(v) == t;
}

// The formats valijson asserts, parsed by hand (valijson matches them with std::regex).
bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

bool isRfc3339Date(std::string_view s) {
  int y = 0, m = 0, d = 0;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  if (!digits(s, 0, 4, y) || !digits(s, 5, 2, m) || !digits(s, 8, 2, d) || m < 1 || m > 12 || d < 1)
    return false;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= (m == 2 && !leap ? 28 : kDays[m - 1]);
}

bool isRfc3339Time(std::string_view s) {
  int h = 0, mi = 0, sec = 0;
  if (s.size() < 9 || s[2] != ':' || s[5] != ':') return false;
  if (!digits(s, 0, 2, h) || !digits(s, 3, 2, mi) || !digits(s, 6, 2, sec) || h > 23 || mi > 59 || sec > 60) {
    return false;
  }
  std::size_t i = 8;
  if (s[i] == '.') {
    const std::size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  int oh = 0, om = 0;
  return s.size() == i + 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' && digits(s, i + 1, 2, oh) &&
         digits(s, i + 4, 2, om) && oh <= 23 && om <= 59;
}

bool isRfc3339DateTime(std::string_view s) {
  return s.size() > 11 && (s[10] == 'T' || s[10] == 't') && isRfc3339Date(s.substr(0, 10)) &&
         isRfc3339Time(s.substr(11));
}

// Messages name what the schema expects, never the value found (it may be a secret).
class CheckConstraint : public valijson::constraints::PolyConstraint {
 public:
  CheckConstraint(std::shared_ptr<const SchemaChecks> checks, const SubschemaTable* table)
      : checks_(std::move(checks)), table_(table) {}

  bool validate(const Adapter& target, const Context& context,
                valijson::ValidationResults* results) const override {
    if (tlStepsLeft != nullptr && (*tlStepsLeft)-- == 0) throw StepLimitReached{};  // once per subschema use
    const SchemaChecks& c = *checks_;
    bool ok = true;
    auto fail = [&](const std::string& message) {
      ok = false;
      if (results != nullptr) results->pushError(context, message);
    };
    if (!c.types.empty() && std::none_of(c.types.begin(), c.types.end(),
                                         [&](const std::string& t) { return hasType(target, t); })) {
      std::string list;
      for (const auto& t : c.types) list.append(list.empty() ? "" : " or ").append(t);
      fail("must be " + list + " (got " + typeOf(target) + ")");
    }
    if (c.enumValues && std::none_of(c.enumValues->begin(), c.enumValues->end(), [&](const Json& v) {
          return target.equalTo(NlohmannJsonAdapter(v), true);
        })) {
      std::string list;
      for (std::size_t i = 0; i < c.enumValues->size() && i < 8; ++i) {
        list.append(i == 0 ? "" : ", ").append(shortDump((*c.enumValues)[i]));
      }
      fail("must be one of: " + list + (c.enumValues->size() > 8 ? ", ..." : ""));
    }
    if (c.constValue && !target.equalTo(NlohmannJsonAdapter(*c.constValue), true)) {
      fail("must be " + shortDump(*c.constValue));
    }
    if (std::string text; target.isString() && target.getString(text)) {
      const auto m = c.pattern ? c.pattern->search(text) : Regex::Match::kYes;
      if (m == Regex::Match::kNo) fail("must match the pattern " + clip(c.patternSource, 100));
      if (m == Regex::Match::kTooExpensive) {
        fail("could not be checked against the pattern " + clip(c.patternSource, 100) +
             " (the value is too long or the pattern too complex)");
      }
      if ((c.format == "date" && !isRfc3339Date(text)) || (c.format == "time" && !isRfc3339Time(text)) ||
          (c.format == "date-time" && !isRfc3339DateTime(text))) {
        fail("must be a valid " + c.format + " (RFC 3339)");
      }
    }
    if (double value = 0; c.multipleOf && target.isNumber() && target.getNumber(value)) {
      const double q = value / *c.multipleOf;
      if (!std::isfinite(q) || std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q))) {
        fail("must be a multiple of " + number(*c.multipleOf));
      }
    }
    if (c.ownsProperties && target.isObject()) {
      target.applyToObject([&](const std::string& name, const Adapter& member) {
        bool matched = c.namedProperties.count(name) != 0;
        for (const auto& p : c.patternProperties) {
          const auto m = p.regex->search(name);
          if (m == Regex::Match::kTooExpensive)
            fail("a property name could not be checked against " + clip(p.source, 100));
          if (m != Regex::Match::kYes) continue;
          matched = true;
          if (!apply(p.target, name, member, context, results)) ok = false;
        }
        if (!matched && !apply(c.additional, name, member, context, results)) ok = false;
        return ok || results != nullptr;  // without a results sink the first failure decides
      });
    }
    return ok;
  }

 private:
  bool apply(const SchemaTarget& t, const std::string& name, const Adapter& member, const Context& context,
             valijson::ValidationResults* results) const {
    if (t.kind == SchemaTarget::kAny) return true;
    if (t.kind == SchemaTarget::kNothing) {
      if (results != nullptr)
        results->pushError(context, "unknown property '" + clip(name, 64) + "' (not allowed by the schema)");
      return false;
    }
    const auto it = table_->find(t.pointer);
    const auto* json = dynamic_cast<const NlohmannJsonAdapter*>(&member);
    if (it == table_->end() || json == nullptr) throw std::logic_error("patternProperties subschema missing");
    valijson::Validator validator;
    valijson::ValidationResults inner;
    const bool ok = validator.validate(*it->second, *json, results != nullptr ? &inner : nullptr);
    for (valijson::ValidationResults::Error e; results != nullptr && inner.popError(e);) {
      Context path = context;
      path.push_back("[" + name + "]");
      path.insert(path.end(), e.context.begin() + (e.context.empty() ? 0 : 1),
                  e.context.end());  // minus <root>
      results->pushError(path, e.description);
    }
    return ok;
  }
  // valijson copies constraints into memory it allocates; placement new is its contract.
  Constraint* cloneInto(void* memory) const override { return new (memory) CheckConstraint(*this); }
  [[nodiscard]] size_t sizeOf() const override { return sizeof(CheckConstraint); }

  std::shared_ptr<const SchemaChecks> checks_;
  const SubschemaTable* table_;  // owned by JsonSchema::Impl, which outlives every constraint
};

struct CompileState {
  std::vector<std::shared_ptr<const SchemaChecks>> checks;  // indexed by the custom keyword's value
  std::vector<std::string> pending;                         // subschema roots still to parse
  std::set<std::string> requested;
  const SubschemaTable* table = nullptr;
};

class CheckBuilder : public valijson::ConstraintBuilder {
 public:
  explicit CheckBuilder(CompileState* state) : state_(state) {}
  valijson::constraints::Constraint* make(const Adapter& value) const override {
    std::int64_t index = -1;
    if (!value.getInteger(index) || index < 0 || static_cast<std::size_t>(index) >= state_->checks.size()) {
      throw std::runtime_error("internal: bad check index");
    }
    const auto& checks = state_->checks[static_cast<std::size_t>(index)];
    std::vector<const SchemaTarget*> targets{&checks->additional};
    for (const auto& p : checks->patternProperties) targets.push_back(&p.target);
    for (const SchemaTarget* t : targets) {
      if (t->kind == SchemaTarget::kSchema && state_->requested.insert(t->pointer).second) {
        state_->pending.push_back(t->pointer);
      }
    }
    return std::make_unique<CheckConstraint>(checks, state_->table).release();  // valijson deletes it
  }

 private:
  CompileState* state_;
};

// valijson's messages in the host's voice; nullopt for summaries that repeat a nested error.
std::optional<std::string> operatorMessage(const std::string& m) {
  auto starts = [&](std::string_view p) { return m.rfind(p, 0) == 0; };
  auto tail = [&](std::string_view p) { return m.substr(p.size()); };
  auto quoted = [&](std::string_view p) { return m.substr(p.size(), m.size() - p.size() - 1); };  // drop '.'
  for (std::string_view summary :
       {"Failed to validate against schema associated with", "Failed to validate item #",
        "Failed to validate against additional", "Failed to validate against child schema #",
        "Failed to validate against dependent schema"}) {
    if (starts(summary)) return std::nullopt;
  }
  static const std::pair<std::string_view, std::string_view> kNumbers[] = {
      {"Expected number greater than or equal to ", "must be >= "},
      {"Expected number greater than ", "must be > "},
      {"Expected number less than or equal to ", "must be <= "},
      {"Expected number less than ", "must be < "}};
  for (const auto& [from, to] : kNumbers) {
    if (starts(from)) return std::string(to) + number(std::strtod(tail(from).c_str(), nullptr));
  }
  static const std::pair<std::string_view, std::string_view> kCounts[] = {
      {"Array should contain no more than ", "must have at most %s items"},
      {"Array should contain no fewer than ", "must have at least %s items"},
      {"String should be no more than ", "must be at most %s characters long"},
      {"String should be no fewer than ", "must be at least %s characters long"},
      {"Object should have no more than ", "must have at most %s properties"},
      {"Object should have no fewer than ", "must have at least %s properties"}};
  for (const auto& [from, to] : kCounts) {
    if (!starts(from)) continue;
    std::string out(to);
    return out.replace(out.find("%s"), 2, std::to_string(std::strtoull(tail(from).c_str(), nullptr, 10)));
  }
  static const std::pair<std::string_view, std::string_view> kFixed[] = {
      {"Failed to validate against any schemas allowed by anyOf", "must match at least one schema in anyOf"},
      {"Failed to validate against any child schemas allowed by oneOf",
       "must match one schema in oneOf (matched none)"},
      {"Failed to validate against exactly one child schema",
       "must match only one schema in oneOf (matched several)"},
      {"Target should not validate against schema specified in 'not'", "must not match the schema in 'not'"},
      {"Failed to validate against a conditional schema",
       "must match the then/else schema that 'if' selects"},
      {"Failed to any values against subschema in 'contains'",
       "must contain an item that matches 'contains'"},
      {"Array contains more items than allowed", "has more items than the schema allows"},
      {"Cannot validate item #", "has more items than the schema allows"}};
  for (const auto& [from, to] : kFixed) {
    if (starts(from)) return std::string(to);
  }
  if (starts("Missing required property "))
    return "missing required property " + quoted("Missing required property ");
  if (starts("Missing dependency "))
    return "missing property " + quoted("Missing dependency ") + " (a dependency)";
  if (const auto q = m.find(": '");
      starts("Object contains a property that could not be validated") && q != m.npos) {
    return "unknown property '" + clip(m.substr(q + 3, m.size() - q - 5), 64) +
           "' (not allowed by the schema)";
  }
  if (starts("Elements at indexes ") && m.find(" violate") != m.npos) {
    return "items must be unique (" + m.substr(20, m.find(" violate") - 20) + " are equal)";
  }
  return m;
}

std::string pointerOf(const Context& context) {
  std::string out;
  for (const auto& c : context) {
    if (c.size() < 2 || c.front() != '[' || c.back() != ']') continue;  // "<root>"
    out += '/';
    for (char ch : std::string_view(c).substr(1, c.size() - 2))
      out += ch == '~' ? "~0" : ch == '/' ? "~1" : std::string(1, ch);
  }
  return out;
}

bool deeperThan(const Json& v, std::size_t limit) {  // iterative: the value may be hostile
  std::vector<std::pair<const Json*, std::size_t>> stack{{&v, 1}};
  while (!stack.empty()) {
    auto [cur, depth] = stack.back();
    stack.pop_back();
    if (depth > limit) return true;
    if (cur->is_structured()) {
      for (const auto& c : *cur) stack.emplace_back(&c, depth + 1);
    }
  }
  return false;
}

}  // namespace

struct JsonSchema::Impl {
  SubschemaTable table;  // declared first, destroyed last: constraints in `root` point at it
  valijson::Schema root;
};

JsonSchema::JsonSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;
JsonSchema::~JsonSchema() = default;

Expected<JsonSchema, std::string> JsonSchema::compile(const nlohmann::json& schema, SchemaOptions options) {
  if (!schema.is_object() && !schema.is_boolean()) {
    return unexpected(std::string("a schema must be a JSON object or a boolean, not ") + schema.type_name());
  }
  auto rewritten = detail::rewriteSchema(schema, options);
  if (!rewritten) return unexpected(rewritten.error());
  auto impl = std::make_unique<Impl>();
  std::string error;
  auto parse = [&] {
    try {
      CompileState state;
      state.checks = std::move(rewritten->checks);
      state.table = &impl->table;
      // One document yields the root and a root per patternProperties/additionalProperties
      // subschema; rewritten $refs ("#/d/...") resolve inside it either way.
      Json wrapper = {{"d", std::move(rewritten->document)}};
      wrapper["$ref"] = "#/d";
      valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
      parser.addConstraintBuilder(detail::kChecksKeyword,
                                  std::make_unique<CheckBuilder>(&state).release());  // owns
      parser.populateSchema(NlohmannJsonAdapter(wrapper), impl->root);
      while (!state.pending.empty()) {
        const std::string pointer = state.pending.back();
        state.pending.pop_back();
        auto& slot = impl->table[pointer];
        slot = std::make_unique<valijson::Schema>();
        wrapper["$ref"] = "#/d" + pointer;
        parser.populateSchema(NlohmannJsonAdapter(wrapper), *slot);
      }
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
      for (std::size_t p = 0; (p = error.find(" /d/", p)) != std::string::npos;)
        error.erase(p + 1, 2);  // wrapper
    } catch (...) {
      error = "unknown error";
    }
  };
  try {
    Poco::Thread thread("json-schema");
    thread.setStackSize(kCompileStackBytes);
    thread.startFunc(std::move(parse));
    thread.join();
  } catch (const std::exception& e) {
    return unexpected("cannot start the schema compiler thread: " + std::string(e.what()));
  }
  if (!error.empty()) return unexpected("invalid schema: " + error);
  return JsonSchema(std::move(impl));
}

std::vector<SchemaViolation> JsonSchema::validate(const nlohmann::json& instance,
                                                  std::size_t maxViolations) const {
  if (deeperThan(instance, kMaxInstanceDepth)) {
    return {{"", "the value is nested deeper than " + std::to_string(kMaxInstanceDepth) + " levels"}};
  }
  std::size_t steps = kMaxSteps;
  struct StepGuard {
    std::size_t* saved = tlStepsLeft;
    explicit StepGuard(std::size_t* steps) { tlStepsLeft = steps; }
    StepGuard(const StepGuard&) = delete;
    StepGuard& operator=(const StepGuard&) = delete;
    ~StepGuard() { tlStepsLeft = saved; }
  } guard(&steps);
  valijson::ValidationResults results;
  bool ok = false;
  try {
    valijson::Validator validator;
    ok = validator.validate(impl_->root, NlohmannJsonAdapter(instance), &results);
  } catch (const StepLimitReached&) {
    return {
        {"", "validation stopped after " + std::to_string(kMaxSteps) + " steps (the schema is too complex)"}};
  } catch (const std::exception& e) {
    return {{"", std::string("could not be validated: ") + e.what()}};
  }
  std::vector<SchemaViolation> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (valijson::ValidationResults::Error e; out.size() < maxViolations && results.popError(e);) {
    auto message = operatorMessage(e.description);
    if (!message) continue;
    SchemaViolation v{pointerOf(e.context), std::move(*message)};
    if (seen.emplace(v.path, v.message).second) out.push_back(std::move(v));
  }
  if (!ok && out.empty() && maxViolations > 0) out.push_back({"", "does not match the schema"});
  return out;
}

}  // namespace mcphost
