// YAML -> the compiled policy model. Strict like the host configuration: unknown or duplicate
// keys, wrong types and empty lists are errors reported as "FILE:LINE: key: problem", because a
// typo in an authorization policy must never silently widen or narrow access.
#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "policy/policy.hpp"
#include "policy/policy_model.hpp"

namespace mcphost::policy {

using detail::Cidr;
using detail::NameMatcher;
using detail::PolicyModel;
using detail::Rule;
using detail::TimeWindow;

namespace {

constexpr std::size_t kMaxPolicyBytes = 8U << 20;

int lineOf(const YAML::Node& node) {
  return node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
}

// A YAML scalar as JSON: plain scalars become booleans, numbers or null when they read as such;
// quoted scalars stay strings ("3" is a string, 3 a number).
nlohmann::json scalarToJson(const YAML::Node& node) {
  const std::string& v = node.Scalar();
  if (node.Tag() != "?") return v;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (v == "null" || v == "Null" || v == "NULL" || v == "~" || v.empty()) return nullptr;
  const char* begin = v.data();
  const char* end = v.data() + v.size();
  std::int64_t integer = 0;
  if (auto [p, ec] = std::from_chars(begin, end, integer); ec == std::errc() && p == end) return integer;
  double real = 0;
  if (auto [p, ec] = std::from_chars(begin, end, real);
      ec == std::errc() && p == end && v.find_first_of("0123456789") != std::string::npos) {
    return real;
  }
  return v;
}

std::optional<std::uint16_t> parseClock(const std::string& text, bool allow24) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  int hours = 0;
  int minutes = 0;
  auto h = std::from_chars(text.data(), text.data() + 2, hours);
  auto m = std::from_chars(text.data() + 3, text.data() + 5, minutes);
  if (h.ec != std::errc() || h.ptr != text.data() + 2 || m.ec != std::errc() || m.ptr != text.data() + 5)
    return std::nullopt;
  if (allow24 && hours == 24 && minutes == 0) return std::uint16_t{24 * 60};
  if (hours > 23 || minutes > 59) return std::nullopt;
  return static_cast<std::uint16_t>(hours * 60 + minutes);
}

std::optional<std::int32_t> parseOffset(const std::string& text) {
  if (text == "UTC" || text == "Z" || text == "utc") return 0;
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-')) return std::nullopt;
  const auto clock = parseClock(text.substr(1), false);
  if (!clock || *clock > 14 * 60) return std::nullopt;
  return text[0] == '-' ? -static_cast<std::int32_t>(*clock) : static_cast<std::int32_t>(*clock);
}

std::optional<int> parseDay(std::string text) {
  static constexpr std::array<const char*, 7> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::size_t i = 0; i < kDays.size(); ++i)
    if (text == kDays[i]) return static_cast<int>(i);
  return std::nullopt;
}

Expected<Cidr, std::string> parseCidr(const std::string& text) {
  Cidr cidr;
  cidr.text = text;
  const auto slash = text.find('/');
  const std::string address = text.substr(0, slash);
  if (::inet_pton(AF_INET, address.c_str(), cidr.address.data()) == 1) {
    cidr.prefix = 32;
  } else if (::inet_pton(AF_INET6, address.c_str(), cidr.address.data()) == 1) {
    cidr.v6 = true;
    cidr.prefix = 128;
  } else {
    return unexpected("'" + text + "' is not an address range (use e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8)");
  }
  if (slash != std::string::npos) {
    const std::string bits = text.substr(slash + 1);
    unsigned prefix = 0;
    auto [p, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
    if (bits.empty() || ec != std::errc() || p != bits.data() + bits.size() || prefix > cidr.prefix) {
      return unexpected("'" + text + "': the prefix length must be 0-" + std::to_string(cidr.prefix));
    }
    cidr.prefix = static_cast<std::uint8_t>(prefix);
  }
  // Peers arrive as plain IPv4 for IPv4-mapped addresses; compare ::ffff:a.b.c.d/n the same way.
  static constexpr std::array<std::uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (cidr.v6 && cidr.prefix >= 96 && std::equal(kMapped.begin(), kMapped.end(), cidr.address.begin())) {
    std::memmove(cidr.address.data(), cidr.address.data() + 12, 4);
    std::fill(cidr.address.begin() + 4, cidr.address.end(), 0);
    cidr.v6 = false;
    cidr.prefix = static_cast<std::uint8_t>(cidr.prefix - 96);
  }
  // Host bits set usually means a typo in the prefix; say what the range really is.
  Cidr network = cidr;
  for (std::size_t bit = network.prefix; bit < (network.v6 ? 128U : 32U); ++bit)
    network.address[bit / 8] &= static_cast<std::uint8_t>(~(0x80U >> (bit % 8)));
  if (network.address != cidr.address) {
    std::array<char, INET6_ADDRSTRLEN> buffer{};
    ::inet_ntop(network.v6 ? AF_INET6 : AF_INET, network.address.data(), buffer.data(), buffer.size());
    return unexpected("'" + text + "' has host bits set; did you mean " + buffer.data() + "/" +
                      std::to_string(network.prefix) + "?");
  }
  return cidr;
}

// Collects the first error with its location, like config::Reader.
class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  [[nodiscard]] bool failed() const { return !error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }

  bool fail(const YAML::Node& node, const std::string& key, const std::string& problem) {
    if (!failed()) error_ = source_ + ":" + std::to_string(lineOf(node)) + ": " + key + ": " + problem;
    return false;
  }

  // The mapping may hold only these keys, each once.
  bool allowKeys(const YAML::Node& map, const std::string& path, const std::set<std::string>& keys) {
    if (!map.IsMap()) return fail(map, path.empty() ? "(top level)" : path, "expected a mapping");
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      std::string where = path;
      if (!where.empty()) where += '.';
      where += key;
      if (keys.count(key) == 0) {
        std::string known;
        for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
        return fail(kv.first, where, "unknown key (known keys: " + known + ")");
      }
      if (!seen.insert(key).second) return fail(kv.first, where, "given twice");
    }
    return true;
  }

  // A non-empty list of non-empty strings, each passed to `accept` (which may report).
  template <typename Accept>
  bool readList(const YAML::Node& node, const std::string& path, Accept&& accept) {
    if (!node.IsSequence()) return fail(node, path, "expected a list, e.g. [a, b]");
    if (node.size() == 0)
      return fail(node, path, "empty list (it would match nothing; omit the key instead)");
    for (const auto& item : node) {
      if (!item.IsScalar() || item.Scalar().empty()) return fail(item, path, "expected a non-empty string");
      if (!accept(item) || failed()) return false;
    }
    return true;
  }

  void readNames(const YAML::Node& map, const std::string& path, const char* key, NameMatcher& out,
                 const std::set<std::string>& allowed = {}) {
    const YAML::Node node = map[key];
    if (!node || failed()) return;
    const std::string where = path + "." + key;
    readList(node, where, [&](const YAML::Node& item) {
      if (!allowed.empty() && allowed.count(item.Scalar()) == 0) {
        std::string known;
        for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
        return fail(item, where, "'" + item.Scalar() + "' is not one of " + known);
      }
      out.add(item.Scalar());
      return true;
    });
    out.finish();
  }

  void readRule(const YAML::Node& node, std::size_t index, PolicyModel& model,
                std::map<std::string, int>& ids);

 private:
  void readActions(const YAML::Node& node, const std::string& path, Rule& rule, PolicyModel& model);
  void readSubjects(const YAML::Node& node, const std::string& path, Rule& rule);
  void readTargets(const YAML::Node& node, const std::string& path, Rule& rule);
  void readConditions(const YAML::Node& node, const std::string& path, Rule& rule);
  void readTimeWindow(const YAML::Node& node, const std::string& path, Rule& rule);

  std::string source_;
  std::string error_;
};

void Loader::readRule(const YAML::Node& node, std::size_t index, PolicyModel& model,
                      std::map<std::string, int>& ids) {
  const std::string path = "rules[" + std::to_string(index) + "]";
  if (!allowKeys(node, path, {"id", "description", "effect", "subjects", "actions", "targets", "conditions"}))
    return;
  Rule rule;
  rule.line = lineOf(node);
  const YAML::Node id = node["id"];
  if (!id) {
    fail(node, path + ".id", "required (a unique name such as hr-read)");
    return;
  }
  rule.id = id.IsScalar() ? id.Scalar() : "";
  const bool idOk = !rule.id.empty() && std::isalnum(static_cast<unsigned char>(rule.id[0])) &&
                    rule.id.size() <= 64 && std::all_of(rule.id.begin(), rule.id.end(), [](unsigned char c) {
                      return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
                    });
  if (!idOk) {
    fail(id, path + ".id", "must be 1-64 characters from [A-Za-z0-9_.:-], starting with a letter or digit");
    return;
  }
  if (const auto [it, inserted] = ids.emplace(rule.id, rule.line); !inserted) {
    fail(id, path + ".id",
         "duplicate id '" + rule.id + "' (first used on line " + std::to_string(it->second) + ")");
    return;
  }
  if (const YAML::Node description = node["description"]) {
    if (!description.IsScalar()) {
      fail(description, path + ".description", "expected a string");
      return;
    }
    rule.description = description.Scalar();
  }
  const YAML::Node effect = node["effect"];
  if (!effect) {
    fail(node, path + ".effect", "required (allow or deny)");
    return;
  }
  if (!effect.IsScalar() || (effect.Scalar() != "allow" && effect.Scalar() != "deny")) {
    fail(effect, path + ".effect", "must be allow or deny");
    return;
  }
  rule.deny = effect.Scalar() == "deny";
  readActions(node, path, rule, model);
  if (const YAML::Node subjects = node["subjects"]; subjects && !failed())
    readSubjects(subjects, path + ".subjects", rule);
  if (const YAML::Node targets = node["targets"]; targets && !failed())
    readTargets(targets, path + ".targets", rule);
  if (const YAML::Node conditions = node["conditions"]; conditions && !failed())
    readConditions(conditions, path + ".conditions", rule);
  if (!failed()) model.rules.push_back(std::move(rule));
}

void Loader::readActions(const YAML::Node& node, const std::string& path, Rule& rule, PolicyModel& model) {
  const YAML::Node actions = node["actions"];
  const std::string where = path + ".actions";
  if (!actions) {
    fail(node, where,
         "required (a list of list, tools/call, resources/read, prompts/get, completion, unmask, or \"*\")");
    return;
  }
  if (actions.IsScalar() && actions.Scalar() == "*") {
    rule.actions = detail::kAllActions;
    return;
  }
  readList(actions, where, [&](const YAML::Node& item) {
    if (item.Scalar() == "*") {
      rule.actions = detail::kAllActions;
      return true;
    }
    const auto action = parseAction(item.Scalar());
    if (!action) {
      return fail(item, where,
                  "unknown action '" + item.Scalar() +
                      "' (known: list, tools/call, resources/read, prompts/get, completion, unmask, *)");
    }
    rule.actions |= static_cast<std::uint8_t>(*action);
    if (*action == Action::kList) model.mentionsList = true;
    return true;
  });
}

void Loader::readSubjects(const YAML::Node& node, const std::string& path, Rule& rule) {
  if (!allowKeys(node, path, {"users", "groups", "roles", "auth_methods", "tenants", "scopes", "claims"}))
    return;
  readNames(node, path, "users", rule.users);
  readNames(node, path, "groups", rule.groups);
  readNames(node, path, "roles", rule.roles);
  readNames(node, path, "auth_methods", rule.authMethods,
            {"none", "jwt", "api_key", "ldap", "mtls", "stdio"});
  readNames(node, path, "tenants", rule.tenants);
  readNames(node, path, "scopes", rule.scopes);
  const YAML::Node claims = node["claims"];
  if (!claims || failed()) return;
  if (!claims.IsMap() || claims.size() == 0) {
    fail(claims, path + ".claims", "expected a mapping of claim names to a value or a list of values");
    return;
  }
  for (const auto& kv : claims) {
    detail::ClaimMatcher claim;
    claim.name = kv.first.as<std::string>();
    const std::string where = path + ".claims." + claim.name;
    if (kv.second.IsScalar()) {
      claim.values.push_back(scalarToJson(kv.second));
    } else if (kv.second.IsSequence() && kv.second.size() > 0) {
      for (const auto& item : kv.second) {
        if (!item.IsScalar()) {
          fail(item, where, "expected a scalar value (string, number, true, false)");
          return;
        }
        claim.values.push_back(scalarToJson(item));
      }
    } else {
      fail(kv.second, where, "expected a value or a non-empty list of values");
      return;
    }
    rule.claims.push_back(std::move(claim));
  }
}

void Loader::readTargets(const YAML::Node& node, const std::string& path, Rule& rule) {
  if (!allowKeys(node, path, {"kinds", "connectors", "names", "annotations", "tags"})) return;
  readNames(node, path, "kinds", rule.kinds, {"tool", "resource", "prompt"});
  readNames(node, path, "connectors", rule.connectors);
  readNames(node, path, "names", rule.names);
  readNames(node, path, "tags", rule.tags);
  const YAML::Node annotations = node["annotations"];
  if (!annotations || failed()) return;
  if (!annotations.IsMap() || annotations.size() == 0) {
    fail(annotations, path + ".annotations", "expected a mapping of annotation names to values");
    return;
  }
  for (const auto& kv : annotations) {
    const auto name = kv.first.as<std::string>();
    if (!kv.second.IsScalar()) {
      std::string where = path + ".annotations.";
      fail(kv.second, where.append(name), "expected a scalar value such as true");
      return;
    }
    rule.annotations.emplace_back(name, scalarToJson(kv.second));
  }
}

void Loader::readConditions(const YAML::Node& node, const std::string& path, Rule& rule) {
  if (!allowKeys(node, path, {"time", "source_cidr", "when"})) return;
  if (const YAML::Node time = node["time"]) {
    if (time.IsSequence()) {
      if (time.size() == 0) fail(time, path + ".time", "empty list (omit the key instead)");
      for (std::size_t i = 0; i < time.size() && !failed(); ++i)
        readTimeWindow(time[i], path + ".time[" + std::to_string(i) + "]", rule);
    } else {
      readTimeWindow(time, path + ".time", rule);
    }
  }
  if (const YAML::Node cidrs = node["source_cidr"]; cidrs && !failed()) {
    const std::string where = path + ".source_cidr";
    readList(cidrs, where, [&](const YAML::Node& item) {
      auto cidr = parseCidr(item.Scalar());
      if (!cidr) return fail(item, where, cidr.error());
      rule.sourceCidrs.push_back(std::move(*cidr));
      return true;
    });
  }
  const YAML::Node when = node["when"];
  if (!when || failed()) return;
  const std::string where = path + ".when";
  if (!when.IsScalar() || when.Scalar().empty()) {
    fail(when, where, "expected an expression such as \"args.amount <= 1000\"");
    return;
  }
  auto expression = Expression::compile(when.Scalar());
  if (!expression) {
    fail(when, where,
         "column " + std::to_string(expression.error().column) + ": " + expression.error().message);
    return;
  }
  const auto withArguments = static_cast<std::uint8_t>(
      static_cast<unsigned>(Action::kCallTool) | static_cast<unsigned>(Action::kGetPrompt) |
      static_cast<unsigned>(Action::kComplete) | static_cast<unsigned>(Action::kUnmask));
  if (expression->usesArguments() && (rule.actions & withArguments) == 0) {
    fail(when, where,
         "refers to args, but none of this rule's actions carries arguments "
         "(only tools/call, prompts/get, completion and unmask do)");
    return;
  }
  rule.when = std::move(*expression);
}

void Loader::readTimeWindow(const YAML::Node& node, const std::string& path, Rule& rule) {
  if (!allowKeys(node, path, {"days", "from", "to", "timezone"})) return;
  TimeWindow window;
  std::string daysText = "every day";
  if (const YAML::Node days = node["days"]) {
    window.days = 0;
    daysText.clear();
    const std::string where = path + ".days";
    readList(days, where, [&](const YAML::Node& item) {
      // "mon" or a range "mon-fri" (which may wrap: "fri-mon").
      const std::string& text = item.Scalar();
      const auto dash = text.find('-');
      const auto first = parseDay(text.substr(0, dash));
      const auto last = dash == std::string::npos ? first : parseDay(text.substr(dash + 1));
      if (!first || !last)
        return fail(item, where, "'" + text + "' is not a day (mon ... sun) or a range (mon-fri)");
      for (int d = *first;; d = (d + 1) % 7) {
        window.days = static_cast<std::uint8_t>(window.days | (1U << static_cast<unsigned>(d)));
        if (d == *last) break;
      }
      daysText += (daysText.empty() ? "" : ",") + text;
      return true;
    });
    if (failed()) return;
  }
  const YAML::Node from = node["from"];
  const YAML::Node to = node["to"];
  if (static_cast<bool>(from) != static_cast<bool>(to)) {
    fail(from ? from : node, path, "set both from and to (or neither, for the whole day)");
    return;
  }
  if (from) {
    const auto start = from.IsScalar() ? parseClock(from.Scalar(), false) : std::nullopt;
    if (!start) {
      fail(from, path + ".from", "expected a time of day HH:MM (00:00-23:59)");
      return;
    }
    const auto end = to.IsScalar() ? parseClock(to.Scalar(), true) : std::nullopt;
    if (!end) {
      fail(to, path + ".to", "expected a time of day HH:MM (00:00-24:00)");
      return;
    }
    if (*start == *end) {
      fail(to, path + ".to", "equals from (an empty window); omit from and to for the whole day");
      return;
    }
    window.from = *start;
    window.to = *end;
  }
  std::string zone = "UTC";
  if (const YAML::Node timezone = node["timezone"]) {
    const auto offset = timezone.IsScalar() ? parseOffset(timezone.Scalar()) : std::nullopt;
    if (!offset) {
      fail(timezone, path + ".timezone",
           "expected UTC or a fixed offset such as +02:00 (named zones are not supported: their offsets "
           "change)");
      return;
    }
    window.offsetMinutes = *offset;
    zone = timezone.Scalar();
  }
  window.text =
      daysText + " " + (from ? from.Scalar() + "-" + to.Scalar() : std::string("all day")) + " " + zone;
  rule.time.push_back(std::move(window));
}

}  // namespace

Expected<std::shared_ptr<const Policy>, std::string> Policy::parse(const std::string& yamlText,
                                                                   const std::string& sourceName) {
  YAML::Node root;
  try {
    root = YAML::Load(yamlText);
  } catch (const YAML::ParserException& e) {
    return unexpected(sourceName + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    return unexpected(sourceName + ": invalid YAML: " + e.what());
  }
  if (!root || root.IsNull()) {
    return unexpected(sourceName + ": the policy is empty (expected version: 1 and a list of rules)");
  }
  auto model = std::make_unique<PolicyModel>();
  model->source = sourceName;
  Loader loader(sourceName);
  try {
    if (loader.allowKeys(root, "", {"version", "rules"})) {
      const YAML::Node version = root["version"];
      const YAML::Node rules = root["rules"];
      if (!version) {
        loader.fail(root, "version", "required (use version: 1)");
      } else if (!version.IsScalar() || version.Scalar() != "1") {
        loader.fail(version, "version", "unsupported version (this host reads version: 1)");
      } else if (!rules) {
        loader.fail(root, "rules", "required (a list of rules; everything not allowed is denied)");
      } else if (!rules.IsSequence()) {
        loader.fail(rules, "rules", "expected a list of rules");
      }
      std::map<std::string, int> ids;
      for (std::size_t i = 0; !loader.failed() && i < rules.size(); ++i)
        loader.readRule(rules[i], i, *model, ids);
    }
  } catch (const YAML::Exception& e) {
    // e.g. a mapping used as a key: yaml-cpp refuses to read it as a string.
    if (loader.failed()) return unexpected(loader.error());
    const std::string line = e.mark.line >= 0 ? ":" + std::to_string(e.mark.line + 1) : "";
    return unexpected(sourceName + line + ": " + e.msg);
  } catch (const std::exception& e) {
    return unexpected(sourceName + ": " + e.what());
  }
  if (loader.failed()) return unexpected(loader.error());
  model->buildIndex();
  return std::make_shared<const Policy>(std::move(model));
}

Expected<std::shared_ptr<const Policy>, std::string> Policy::loadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(path + ": cannot read the policy file: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return unexpected(path + ": cannot read the policy file: " + std::strerror(errno));
  if (text.str().size() > kMaxPolicyBytes) {
    return unexpected(path + ": the policy file is larger than " + std::to_string(kMaxPolicyBytes >> 20) +
                      " MB");
  }
  return parse(text.str(), path);
}

}  // namespace mcphost::policy
