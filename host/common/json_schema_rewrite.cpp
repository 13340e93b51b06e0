#include "common/json_schema_rewrite.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

namespace mcphost::detail {

namespace {

using Json = nlohmann::json;
using Segments = std::vector<std::string>;

void replaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
}

std::string pointerOf(const Segments& segs) {
  std::string out;
  for (std::string s : segs) {
    replaceAll(s, "~", "~0");
    replaceAll(s, "/", "~1");
    out.append("/").append(s);
  }
  return out;
}
std::string where(const Segments& segs) {
  return segs.empty() ? std::string("(root)") : pointerOf(segs);
}

pcre_jit_stack* threadJitStack(void* /*unused*/) {
  struct Holder {
    pcre_jit_stack* stack = pcre_jit_stack_alloc(32 * 1024, 1024 * 1024);
    Holder() = default;
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    ~Holder() {
      if (stack != nullptr) pcre_jit_stack_free(stack);
    }
  };
  thread_local Holder holder;  // a JIT stack must not be shared between threads
  return holder.stack;         // nullptr: PCRE falls back to 32 KiB of the machine stack
}

constexpr std::size_t kMaxSubschemaRoots = 64;  // patternProperties/additionalProperties targets

bool isSchema(const Json& v) {
  return v.is_object() || v.is_boolean();
}
bool isStrings(const Json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const Json& s) { return s.is_string(); });
}

// Keyword value types that valijson would reject with a message naming neither place nor keyword.
struct ShapeRule {
  bool (*fits)(const Json&);
  const char* problem;
  std::vector<const char*> keywords;
};
const ShapeRule kShapeRules[] = {
    {[](const Json& v) { return v.is_number(); },
     "must be a number",
     {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
    {[](const Json& v) {
       return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
     },
     "must be a non-negative integer",
     {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"}},
    {[](const Json& v) { return v.is_boolean(); }, "must be true or false", {"uniqueItems"}},
    {isStrings, "must be an array of strings", {"required"}},
    {[](const Json& v) { return v.is_object(); },
     "must be an object",
     {"properties", "patternProperties", "definitions", "$defs", "dependencies", "dependentRequired"}},
    {isSchema,
     "must be a schema (an object or a boolean)",
     {"not", "if", "then", "else", "additionalItems", "additionalProperties", "contains", "propertyNames"}},
    {[](const Json& v) { return v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), isSchema); },
     "must be a non-empty array of schemas",
     {"allOf", "anyOf", "oneOf"}},
    {[](const Json& v) { return isSchema(v) || (v.is_array() && std::all_of(v.begin(), v.end(), isSchema)); },
     "must be a schema or an array of schemas",
     {"items"}}};

class Analyzer {
 public:
  Analyzer(const Json& doc, SchemaOptions options) : doc_(doc), options_(options) {}

  Expected<RewrittenSchema, std::string> run() {
    if (!checkDepth()) return unexpected(error_);
    add(&doc_, {});
    for (std::size_t i = 0; i < nodes_.size() && error_.empty(); ++i) discover(i);
    for (std::size_t i = 0; i < nodes_.size() && error_.empty(); ++i) {
      if (color_[i] == 0) chain(i, 1);
    }
    if (!error_.empty()) return unexpected(error_);
    RewrittenSchema out{doc_, {}};
    std::vector<std::size_t> order(nodes_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    // Deepest first: renaming a node's keywords then never moves a node that is still to visit.
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return nodes_[a].segs.size() > nodes_[b].segs.size();
    });
    for (std::size_t i : order) {
      Json* node = &out.document;
      for (const auto& s : nodes_[i].segs) node = &(node->is_array() ? node->at(std::stoul(s)) : node->at(s));
      rewrite(nodes_[i].segs, *node, out.checks);
      if (!error_.empty()) return unexpected(error_);
    }
    return out;
  }

 private:
  struct Node {
    const Json* value;
    Segments segs;
    std::vector<std::size_t> same;  // subschemas applied to the same instance value
  };

  void fail(Segments segs, const std::string& key, const std::string& problem) {
    if (!error_.empty()) return;
    if (!key.empty()) segs.push_back(key);
    error_ = where(segs) + ": " + problem;
  }

  bool checkDepth() {  // iterative, so a 100000-deep document cannot overflow this stack either
    std::vector<std::pair<const Json*, std::size_t>> stack{{&doc_, 1}};
    while (!stack.empty()) {
      auto [v, depth] = stack.back();
      stack.pop_back();
      if (depth > JsonSchema::kMaxSchemaDepth) {
        error_ =
            "the schema is nested deeper than " + std::to_string(JsonSchema::kMaxSchemaDepth) + " levels";
        return false;
      }
      if (v->is_structured()) {
        for (const auto& child : *v) stack.emplace_back(&child, depth + 1);
      }
    }
    return true;
  }

  std::size_t add(const Json* v, Segments segs) {
    auto [it, inserted] = index_.emplace(v, nodes_.size());
    if (inserted) {
      nodes_.push_back({v, std::move(segs), {}});
      color_.push_back(0);
      length_.push_back(0);
      if (nodes_.size() > JsonSchema::kMaxSchemaNodes) {
        fail({}, "", "more than " + std::to_string(JsonSchema::kMaxSchemaNodes) + " subschemas");
      }
    }
    return it->second;
  }

  // A local "$ref", decoded as valijson decodes it: ~1, then ~0, then %XX; empty tokens skipped.
  const Json* resolve(const std::string& ref, Segments& segs, std::string& problem) const {
    if (ref.empty() || ref[0] != '#' || (ref.size() > 1 && ref[1] != '/')) {
      problem = "only local references ('#' or '#/...') are supported, got '" + ref + "'";
      return nullptr;
    }
    const Json* cur = &doc_;
    for (std::size_t pos = 1; pos < ref.size();) {
      const std::size_t next = std::min(ref.find('/', pos + 1), ref.size());
      std::string token = ref.substr(pos + 1, next - pos - 1);
      pos = next;
      replaceAll(token, "~1", "/");
      replaceAll(token, "~0", "~");
      for (std::size_t p = 0; (p = token.find('%', p)) != std::string::npos; ++p) {
        if (p + 2 >= token.size() || std::isxdigit(static_cast<unsigned char>(token[p + 1])) == 0 ||
            std::isxdigit(static_cast<unsigned char>(token[p + 2])) == 0) {
          problem = "bad %-escape in '" + ref + "'";
          return nullptr;
        }
        token.replace(p, 3, 1, static_cast<char>(std::stoi(token.substr(p + 1, 2), nullptr, 16)));
      }
      if (token.empty()) continue;
      const bool index = !token.empty() && token.size() < 10 &&
                         std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (cur->is_object() && cur->contains(token)) {
        cur = &(*cur)[token];
      } else if (cur->is_array() && index && std::stoul(token) < cur->size()) {
        cur = &(*cur)[std::stoul(token)];
      } else {
        problem = "'" + ref + "' does not resolve within this schema";
        return nullptr;
      }
      segs.push_back(token);
    }
    return cur;
  }

  void discover(std::size_t i) {
    const Json& v = *nodes_[i].value;
    if (!v.is_object()) return;
    const Segments segs = nodes_[i].segs;  // a copy: add() may reallocate nodes_
    auto child = [&](const Json& c, std::initializer_list<std::string> extra, bool same) {
      if (!c.is_object()) return;  // booleans are leaves; other types are refused by rewrite()
      Segments path = segs;
      path.insert(path.end(), extra);
      const std::size_t n = add(&c, std::move(path));
      if (same) nodes_[i].same.push_back(n);
    };
    if (const auto ref = v.find("$ref"); ref != v.end()) {  // valijson ignores the siblings of $ref
      std::string problem = "must be a string";
      Segments target;
      const Json* t = ref->is_string() ? resolve(ref->get<std::string>(), target, problem) : nullptr;
      if (t == nullptr) return fail(segs, "$ref", problem);
      if (t->is_object()) {
        const std::size_t n = add(t, std::move(target));
        nodes_[i].same.push_back(n);
      }
      return;
    }
    // Subschemas that apply to the value itself (same = true) or to parts of it.
    using Keys = std::vector<const char*>;
    static const std::pair<Keys, bool> kArrays[] = {{{"allOf", "anyOf", "oneOf"}, true}, {{"items"}, false}};
    static const std::pair<Keys, bool> kSingles[] = {
        {{"not", "if", "then", "else"}, true},
        {{"items", "additionalItems", "contains", "propertyNames", "additionalProperties"}, false}};
    static const std::pair<Keys, bool> kMaps[] = {
        {{"dependencies"}, true}, {{"properties", "patternProperties", "definitions", "$defs"}, false}};
    for (const auto& [keys, same] : kArrays) {
      for (const char* key : keys) {
        if (const auto it = v.find(key); it != v.end() && it->is_array()) {
          for (std::size_t k = 0; k < it->size(); ++k) child((*it)[k], {key, std::to_string(k)}, same);
        }
      }
    }
    for (const auto& [keys, same] : kSingles) {
      for (const char* key : keys) {
        if (const auto it = v.find(key); it != v.end()) child(*it, {key}, same);
      }
    }
    for (const auto& [keys, same] : kMaps) {
      for (const char* key : keys) {
        if (const auto it = v.find(key); it != v.end() && it->is_object()) {
          for (const auto& [name, c] : it->items()) child(c, {key, name}, same);
        }
      }
    }
  }

  // Longest chain of subschemas applied to one value. A loop here would recurse forever, and a
  // long chain multiplies the stack that validate() needs per level of the value.
  std::size_t chain(std::size_t i, std::size_t depth) {
    const std::string tooLong = "more than " + std::to_string(JsonSchema::kMaxApplicatorChain) +
                                " subschemas (allOf/anyOf/oneOf/not/if/$ref) apply to one value in a chain";
    if (depth > JsonSchema::kMaxApplicatorChain) {
      fail(nodes_[i].segs, "", tooLong);
      return 0;
    }
    color_[i] = 1;
    std::size_t longest = 0;
    for (std::size_t n : nodes_[i].same) {
      if (!error_.empty()) break;
      if (color_[n] == 1) {
        fail(nodes_[i].segs, "",
             "refers back to " + where(nodes_[n].segs) +
                 " without descending into the value (endless recursion)");
        break;
      }
      longest = std::max(longest, color_[n] == 2 ? length_[n] : chain(n, depth + 1));
    }
    color_[i] = 2;
    length_[i] = longest + 1;
    if (depth - 1 + length_[i] > JsonSchema::kMaxApplicatorChain) fail(nodes_[i].segs, "", tooLong);
    return length_[i];
  }

  // The rewritten document's pointer for `segs`: patternProperties and the additionalProperties
  // beside it are renamed so that valijson ignores them.
  std::string translate(const Segments& segs) {
    std::string out;
    const Json* cur = &doc_;
    for (const auto& s : segs) {
      const bool renamed = index_.count(cur) != 0 && cur->is_object() && cur->contains("patternProperties") &&
                           !cur->contains("$ref") &&
                           (s == "patternProperties" || s == "additionalProperties");
      if (s.empty()) fail(segs, "", "a subschema under an empty property name cannot be referenced");
      out += pointerOf({renamed ? "x-mcphost-" + s : s});
      cur = &(cur->is_array() ? cur->at(std::stoul(s)) : cur->at(s));
    }
    return out;
  }

  SchemaTarget targetOf(const Json& v, const Segments& segs) {
    if (v.is_boolean()) return {v.get<bool>() ? SchemaTarget::kAny : SchemaTarget::kNothing, {}};
    if (++subschemaRoots_ > kMaxSubschemaRoots) fail(segs, "", "too many patternProperties subschemas");
    return {SchemaTarget::kSchema, translate(segs)};
  }

  bool checkShapes(const Segments& segs, const Json& node) {
    for (const auto& rule : kShapeRules) {
      for (const char* key : rule.keywords) {
        const auto it = node.find(key);
        if (it == node.end() || rule.fits(*it)) continue;
        fail(segs, key, rule.problem);
        return false;
      }
    }
    // Maps of subschemas; dependencies may also name required properties instead.
    for (const char* key :
         {"properties", "patternProperties", "definitions", "$defs", "dependencies", "dependentRequired"}) {
      const bool names = std::string_view(key).rfind("depend", 0) == 0;
      const bool schemas = std::string_view(key) != "dependentRequired";
      const auto it = node.find(key);
      if (it == node.end()) continue;
      for (const auto& [name, v] : it->items()) {
        if ((schemas && isSchema(v)) || (names && isStrings(v))) continue;
        Segments at = segs;
        at.emplace_back(key);
        const char* problem = !names    ? "must be a schema (an object or a boolean)"
                              : schemas ? "must be a schema or an array of property names"
                                        : "must be an array of property names";
        fail(at, name, problem);
        return false;
      }
    }
    return true;
  }

  void rewrite(const Segments& segs, Json& node, std::vector<std::shared_ptr<const SchemaChecks>>& all) {
    if (!node.is_object()) return;
    if (const auto ref = node.find("$ref"); ref != node.end()) {
      Segments target;
      std::string ignored;
      if (resolve(ref->get<std::string>(), target, ignored) != nullptr) *ref = "#/d" + translate(target);
      return;
    }
    // The custom keyword is ours alone, and "id" would move the base of $ref resolution.
    for (auto it = node.begin(); it != node.end();) {
      it = it.key().rfind("x-mcphost-", 0) == 0 || it.key() == "id" ? node.erase(it) : std::next(it);
    }
    static const char* const kUnsupported[] = {"unevaluatedProperties", "unevaluatedItems", "prefixItems",
                                               "dependentSchemas",      "$dynamicRef",      "$recursiveRef",
                                               "minContains",           "maxContains"};
    for (const char* key : kUnsupported) {
      if (!node.contains(key)) continue;
      if (options_.strict) return fail(segs, key, "is not supported (use draft-07 keywords)");
      if (std::string_view(key) == "prefixItems") node.erase("items");  // "items" means something else then
      node.erase(key);
    }
    if (!checkShapes(segs, node)) return;
    auto checks = std::make_shared<SchemaChecks>();
    if (auto it = node.find("dependentRequired"); it != node.end()) {  // 2019-09 spelling of dependencies
      for (const auto& [k, v] : it->items()) node["dependencies"][k] = v;
      node.erase("dependentRequired");
    }
    if (auto it = node.find("type"); it != node.end()) {
      static const std::set<std::string> kTypes = {"array",  "boolean", "integer", "null",
                                                   "number", "object",  "string"};
      for (const auto& t : it->is_array() ? *it : Json::array({*it})) {
        if (!t.is_string() || kTypes.count(t.get<std::string>()) == 0) {
          return fail(segs, "type",
                      "must be a type name or an array of them (array, boolean, integer, null, number, "
                      "object, string)");
        }
        checks->types.push_back(t.get<std::string>());
      }
      node.erase(it);
    }
    if (auto it = node.find("enum"); it != node.end()) {
      if (!it->is_array()) return fail(segs, "enum", "must be an array");
      checks->enumValues = std::move(*it);
      node.erase("enum");
    }
    if (auto it = node.find("const"); it != node.end()) {
      checks->constValue = std::move(*it);
      node.erase("const");
    }
    if (auto it = node.find("pattern"); it != node.end()) {
      std::string problem = "must be a string";
      if (it->is_string()) checks->pattern = Regex::compile(it->get<std::string>(), problem);
      if (!checks->pattern) return fail(segs, "pattern", problem);
      checks->patternSource = it->get<std::string>();
      node.erase(it);
    }
    if (auto it = node.find("format"); it != node.end()) {
      if (!it->is_string()) return fail(segs, "format", "must be a string");
      checks->format = it->get<std::string>();
      node.erase(it);
    }
    if (auto it = node.find("multipleOf"); it != node.end()) {
      if (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>())) {
        return fail(segs, "multipleOf", "must be a number greater than 0");
      }
      checks->multipleOf = it->get<double>();
      node.erase(it);
    }
    if (node.contains("patternProperties")) {
      checks->ownsProperties = true;
      for (const auto& [source, schema] : node["patternProperties"].items()) {
        std::string problem;
        auto regex = Regex::compile(source, problem);
        if (!regex)
          return fail(segs, "patternProperties", std::string("'").append(source).append("' ") + problem);
        Segments child = segs;
        child.insert(child.end(), {"patternProperties", source});
        checks->patternProperties.push_back({source, std::move(regex), targetOf(schema, child)});
      }
      if (const auto props = node.find("properties"); props != node.end()) {
        for (const auto& [name, ignored] : props->items()) checks->namedProperties.insert(name);
      }
      if (const auto add = node.find("additionalProperties"); add != node.end()) {
        Segments child = segs;
        child.emplace_back("additionalProperties");
        checks->additional = targetOf(*add, child);
      }
      for (const char* key : {"additionalProperties", "patternProperties"}) {  // hidden from valijson
        if (!node.contains(key)) continue;
        node[std::string("x-mcphost-") + key] = std::move(node[key]);
        node.erase(key);
      }
    }
    if (!error_.empty()) return;
    node[kChecksKeyword] = all.size();
    all.push_back(std::move(checks));
  }

  const Json& doc_;
  SchemaOptions options_;
  std::vector<Node> nodes_;
  std::vector<int> color_;           // chain(): 0 unvisited, 1 on the stack, 2 done
  std::vector<std::size_t> length_;  // chain(): the longest chain that starts at a node
  std::unordered_map<const Json*, std::size_t> index_;
  std::size_t subschemaRoots_ = 0;
  std::string error_;
};

}  // namespace

std::shared_ptr<const Regex> Regex::compile(const std::string& source, std::string& error) {
  if (source.find('\0') != std::string::npos) {
    error = "must not contain a NUL character";
    return nullptr;
  }
  const char* message = nullptr;
  int offset = 0;
  pcre* re = pcre_compile(source.c_str(), PCRE_UTF8, &message, &offset, nullptr);
  if (re == nullptr) {
    error = "is not a valid regular expression (" + std::string(message != nullptr ? message : "?") +
            " at offset " + std::to_string(offset) + ")";
    return nullptr;
  }
  return std::make_shared<const Regex>(Private{}, re);
}

Regex::Regex(Private /*unused*/, pcre* re) : re_(re) {
  const char* ignored = nullptr;
  studied_ = pcre_study(re_, PCRE_STUDY_JIT_COMPILE, &ignored);
  extra_ = studied_ != nullptr ? studied_ : &own_;
  extra_->flags |= PCRE_EXTRA_MATCH_LIMIT | PCRE_EXTRA_MATCH_LIMIT_RECURSION;
  extra_->match_limit = 1000000;
  extra_->match_limit_recursion = 1000;  // only the interpreter (no JIT) recurses on the C stack
  if (studied_ != nullptr) pcre_assign_jit_stack(studied_, threadJitStack, nullptr);
}

Regex::~Regex() {
  if (studied_ != nullptr) pcre_free_study(studied_);
  pcre_free(re_);
}

Regex::Match Regex::search(const std::string& subject) const {
  if (subject.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return Match::kTooExpensive;
  const int rc = pcre_exec(re_, extra_, subject.data(), static_cast<int>(subject.size()), 0, 0, nullptr, 0);
  if (rc >= 0) return Match::kYes;
  return rc == PCRE_ERROR_NOMATCH ? Match::kNo : Match::kTooExpensive;  // limits, bad UTF-8
}

Expected<RewrittenSchema, std::string> rewriteSchema(const nlohmann::json& schema, SchemaOptions options) {
  return Analyzer(schema, options).run();
}

}  // namespace mcphost::detail
