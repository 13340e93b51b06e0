// Evaluation: the rule index, decide(), visible(), explain() and PolicyStore. The matchers are
// in policy_matchers.hpp, the YAML side in policy_loader.cpp.
#include "policy/policy.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <bit>

#include "policy/policy_model.hpp"

namespace mcphost::policy {

using detail::Bucket;
using detail::Candidate;
using detail::PolicyModel;
using detail::Rule;

std::string_view actionName(Action a) {
  switch (a) {
    case Action::kList:
      return "list";
    case Action::kCallTool:
      return "tools/call";
    case Action::kReadResource:
      return "resources/read";
    case Action::kGetPrompt:
      return "prompts/get";
    case Action::kComplete:
      return "completion";
    case Action::kUnmask:
      return "unmask";
  }
  return "unknown action";
}

std::optional<Action> parseAction(std::string_view name) {
  for (const Action a : {Action::kList, Action::kCallTool, Action::kReadResource, Action::kGetPrompt,
                         Action::kComplete, Action::kUnmask}) {
    if (actionName(a) == name) return a;
  }
  return std::nullopt;
}

namespace detail {

void PolicyModel::buildIndex() {
  for (auto& byName : byConnector) byName.clear();
  for (auto& bucket : anyConnector) bucket = {};
  for (auto& byStart : byConnectorStart)
    for (auto& bucket : byStart) bucket = {};
  for (std::uint32_t i = 0; i < rules.size(); ++i) {
    const Rule& rule = rules[i];
    for (std::size_t bit = 0; bit < kActionCount; ++bit) {
      if (((rule.actions >> bit) & 1U) == 0) continue;
      auto file = [&](Bucket& bucket, std::string prefix, bool indexed) {
        (rule.deny ? bucket.denies : bucket.allows)
            .push_back(Candidate{i, indexed, std::move(prefix), rule.names.literalPrefix(),
                                 rule.users.bloom(), rule.groups.bloom(), rule.roles.bloom()});
      };
      if (!rule.connectors.exactOnly()) {
        std::string prefix = rule.connectors.literalPrefix();
        Bucket& bucket = prefix.empty() ? anyConnector[bit]
                                        : byConnectorStart[bit][static_cast<unsigned char>(prefix.front())];
        file(bucket, std::move(prefix), false);
        continue;
      }
      for (const auto& connector : rule.connectors.exact()) file(byConnector[bit][connector], {}, true);
    }
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Matching one rule against the facts of one request

namespace {

// Actions whose requests carry arguments; for the others "no arguments" is a known fact.
bool carriesArguments(std::size_t actionBit) {
  const auto action = static_cast<Action>(1U << actionBit);
  return action == Action::kCallTool || action == Action::kGetPrompt || action == Action::kComplete ||
         action == Action::kUnmask;
}

std::optional<std::size_t> actionBit(Action action) {
  const auto bits = static_cast<unsigned>(action);
  if (bits == 0 || (bits & (bits - 1)) != 0 || bits >= (1U << detail::kActionCount)) return std::nullopt;
  return static_cast<std::size_t>(std::countr_zero(bits));
}

// What a decision looks at, prepared once per request.
struct Probe {
  Probe(const Facts& f, bool argumentsKnown) : facts(f) {
    epochSeconds = std::chrono::duration_cast<std::chrono::seconds>(f.now.time_since_epoch()).count();
    eval.principal = &f.principal;
    eval.action = actionName(f.action);
    eval.targetKind = f.target.kind;
    eval.connector = f.target.connector;
    eval.name = f.target.name;
    eval.annotations = f.target.annotations;
    eval.tags = f.target.tags;
    eval.arguments = f.arguments;
    eval.argumentsKnown = argumentsKnown || f.arguments != nullptr;
  }
  const detail::IpAddress& sourceIp() {
    if (!ip) ip = detail::parseIp(facts.principal.sourceIp);
    return *ip;
  }
  // False when the candidate's Bloom bits prove that one of its subject lists cannot match.
  bool subjectsMayMatch(const Candidate& c) {
    if ((c.usersBloom | c.groupsBloom | c.rolesBloom) == 0) return true;
    if (!blooms) {
      const auth::Principal& p = facts.principal;
      blooms = SubjectBlooms{detail::nameBit(p.subject), 0, 0};
      for (const auto& g : p.groups) blooms->groups |= detail::nameBit(g);
      for (const auto& r : p.roles) blooms->roles |= detail::nameBit(r);
    }
    return (c.usersBloom == 0 || (c.usersBloom & blooms->subject) != 0) &&
           (c.groupsBloom == 0 || (c.groupsBloom & blooms->groups) != 0) &&
           (c.rolesBloom == 0 || (c.rolesBloom & blooms->roles) != 0);
  }

  const Facts& facts;
  std::int64_t epochSeconds = 0;
  EvalContext eval;
  std::optional<detail::IpAddress> ip;  // parsed on first use: most rules have no CIDR
  struct SubjectBlooms {
    std::uint64_t subject = 0;
    std::uint64_t groups = 0;
    std::uint64_t roles = 0;
  };
  std::optional<SubjectBlooms> blooms;  // computed on first use
};

std::string inQuotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}
std::string listOf(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? ", " : "") + i;
  return out + "]";
}

// MCP's defaults for absent tool annotation hints (the spec defines them conservatively:
// tools are assumed destructive and open-world unless they say otherwise).
const nlohmann::json* annotationValue(const Probe& probe, const std::string& name) {
  static const nlohmann::json kFalse = false;
  static const nlohmann::json kTrue = true;
  if (probe.facts.target.annotations != nullptr && probe.facts.target.annotations->is_object()) {
    const auto it = probe.facts.target.annotations->find(name);
    if (it != probe.facts.target.annotations->end()) return &*it;
  }
  if (probe.facts.target.kind != "tool") return nullptr;
  if (name == "readOnlyHint" || name == "idempotentHint") return &kFalse;
  if (name == "destructiveHint" || name == "openWorldHint") return &kTrue;
  return nullptr;
}

// kTrue: every matcher and condition holds; kFalse: one does not (whyNot, when given, names the
// first); kUnknown: only the `when` is undecided, because it needs arguments that are not known.
Truth matchRule(const Rule& rule, Probe& probe, std::string* whyNot, bool connectorIndexed = false) {
  const auth::Principal& p = probe.facts.principal;
  const Target& target = probe.facts.target;
  auto no = [&](auto&& describe) {
    if (whyNot != nullptr) *whyNot = describe();
    return Truth::kFalse;
  };
  // What before who: target names are the most selective test for rules that the connector
  // index could not narrow down (connector globs), and they reject at the first character.
  if (!rule.kinds.matches(target.kind))
    return no(
        [&] { return "targets.kinds: " + inQuotes(target.kind) + " is not in " + rule.kinds.describe(); });
  if (!connectorIndexed && !rule.connectors.matches(target.connector)) {
    return no([&] {
      return "targets.connectors: " + inQuotes(target.connector) + " is not in " + rule.connectors.describe();
    });
  }
  if (!rule.names.matches(target.name))
    return no(
        [&] { return "targets.names: " + inQuotes(target.name) + " is not in " + rule.names.describe(); });
  if (!rule.users.matches(p.subject))
    return no(
        [&] { return "subjects.users: " + inQuotes(p.subject) + " is not in " + rule.users.describe(); });
  if (!rule.groups.matchesAnyOf(p.groups))
    return no(
        [&] { return "subjects.groups: none of " + listOf(p.groups) + " is in " + rule.groups.describe(); });
  if (!rule.roles.matchesAnyOf(p.roles))
    return no(
        [&] { return "subjects.roles: none of " + listOf(p.roles) + " is in " + rule.roles.describe(); });
  if (!rule.authMethods.matches(p.authMethod)) {
    return no([&] {
      return "subjects.auth_methods: " + inQuotes(p.authMethod) + " is not in " + rule.authMethods.describe();
    });
  }
  if (!rule.tenants.matches(p.tenant))
    return no(
        [&] { return "subjects.tenants: " + inQuotes(p.tenant) + " is not in " + rule.tenants.describe(); });
  if (!rule.scopes.matchesAnyOf(p.scopes))
    return no(
        [&] { return "subjects.scopes: none of " + listOf(p.scopes) + " is in " + rule.scopes.describe(); });
  for (const auto& claim : rule.claims) {
    const nlohmann::json* actual = nullptr;
    if (p.attributes.is_object()) {
      const auto it = p.attributes.find(claim.name);
      if (it != p.attributes.end()) actual = &*it;
    }
    // A multi-valued claim (an array, e.g. amr) matches when any of its elements is allowed.
    auto allowed = [&](const nlohmann::json& v) {
      return std::find(claim.values.begin(), claim.values.end(), v) != claim.values.end();
    };
    const bool ok =
        actual != nullptr &&
        (actual->is_array() ? std::any_of(actual->begin(), actual->end(), allowed) : allowed(*actual));
    if (!ok) {
      return no([&] {
        return "subjects.claims." + claim.name + ": " + (actual == nullptr ? "missing" : actual->dump()) +
               " is not in " + nlohmann::json(claim.values).dump();
      });
    }
  }
  for (const auto& [name, expected] : rule.annotations) {
    const nlohmann::json* actual = annotationValue(probe, name);
    if (actual == nullptr || *actual != expected) {
      return no([&, &annotation = name, &want = expected] {
        return "targets.annotations." + annotation + ": " + (actual == nullptr ? "missing" : actual->dump()) +
               " is not " + want.dump();
      });
    }
  }
  if (rule.tags.configured() && (target.tags == nullptr || !rule.tags.matchesAnyOf(*target.tags))) {
    return no([&] {
      return "targets.tags: none of " + (target.tags == nullptr ? "[]" : listOf(*target.tags)) + " is in " +
             rule.tags.describe();
    });
  }
  if (!rule.sourceCidrs.empty()) {
    const auto& ip = probe.sourceIp();
    if (std::none_of(rule.sourceCidrs.begin(), rule.sourceCidrs.end(),
                     [&](const detail::Cidr& c) { return detail::cidrContains(c, ip); })) {
      return no([&] {
        std::string ranges;
        for (const auto& c : rule.sourceCidrs) ranges += (ranges.empty() ? "" : ", ") + c.text;
        return "conditions.source_cidr: " + inQuotes(p.sourceIp) + " is not in [" + ranges + "]";
      });
    }
  }
  if (!rule.time.empty() &&
      std::none_of(rule.time.begin(), rule.time.end(), [&](const detail::TimeWindow& w) {
        return detail::timeWindowContains(w, probe.epochSeconds);
      })) {
    return no([&] {
      std::string windows;
      for (const auto& w : rule.time) windows += (windows.empty() ? "" : "; ") + w.text;
      return "conditions.time: " + detail::describeTime(probe.epochSeconds, rule.time.front().offsetMinutes) +
             " is outside " + windows;
    });
  }
  if (rule.when) {
    const Truth t = rule.when->evaluate(probe.eval);
    if (t == Truth::kFalse) return no([&] { return "conditions.when: false: " + rule.when->text(); });
    if (t == Truth::kUnknown && whyNot != nullptr) *whyNot = "conditions.when needs the call's arguments";
    return t;
  }
  return Truth::kTrue;
}

// The buckets a request's connector selects (see PolicyModel), for one action bit.
struct Buckets {
  std::array<const Bucket*, 3> lists;
};
Buckets bucketsFor(const PolicyModel& model, std::size_t bit, std::string_view connector) {
  static const Bucket kEmpty;
  const auto& byName = model.byConnector[bit];
  const auto it = byName.find(connector);
  const Bucket* exact = it == byName.end() ? &kEmpty : &it->second;
  const Bucket* byStart = connector.empty()
                              ? &kEmpty
                              : &model.byConnectorStart[bit][static_cast<unsigned char>(connector.front())];
  return {{exact, byStart, &model.anyConnector[bit]}};
}

// prefix of text? Inline: the prefixes are short and most differ in the first byte.
bool startsWith(std::string_view text, const std::string& prefix) {
  if (prefix.size() > text.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (text[i] != prefix[i]) return false;
  return true;
}

// Visits the denies (or allows) of the buckets in file order, skipping candidates whose
// prefixes or Bloom bits rule them out, until `visit` returns true; returns that rule.
template <typename Visit>
std::optional<std::uint32_t> firstInOrder(const Buckets& buckets, bool denies, Probe& probe, Visit&& visit) {
  const Target& target = probe.facts.target;
  std::array<const std::vector<Candidate>*, 3> lists{};
  for (std::size_t k = 0; k < lists.size(); ++k)
    lists[k] = denies ? &buckets.lists[k]->denies : &buckets.lists[k]->allows;
  std::array<std::size_t, 3> next{};
  while (true) {
    std::size_t best = lists.size();
    for (std::size_t k = 0; k < lists.size(); ++k) {
      if (next[k] < lists[k]->size() &&
          (best == lists.size() || (*lists[k])[next[k]].rule < (*lists[best])[next[best]].rule))
        best = k;
    }
    if (best == lists.size()) return std::nullopt;
    const Candidate& c = (*lists[best])[next[best]++];
    if (!startsWith(target.connector, c.connectorPrefix) || !startsWith(target.name, c.namePrefix) ||
        !probe.subjectsMayMatch(c))
      continue;
    if (visit(c)) return c.rule;
  }
}

// Client-supplied names end up in one-line reasons and logs: no control characters there.
void appendPrintable(std::string& out, std::string_view s) {
  s = s.substr(0, 200);
  for (const char c : s) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
}

// The most frequent outcome, so it is built with a single allocation.
Decision defaultDeny(const Facts& facts) {
  Decision d;
  const std::string_view action = actionName(facts.action);
  d.reason.reserve(48 + action.size() + std::min<std::size_t>(facts.target.name.size(), 200) +
                   std::min<std::size_t>(facts.principal.subject.size(), 200));
  d.reason.append("no rule allows ").append(action).append(" on ");
  appendPrintable(d.reason, facts.target.name);
  d.reason.append(" for ");
  appendPrintable(d.reason, facts.principal.subject);
  d.reason.append(" (default deny)");
  return d;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Policy

Policy::Policy(std::unique_ptr<detail::PolicyModel> model)
    : model_(model ? std::move(model) : std::make_unique<detail::PolicyModel>()) {}
Policy::~Policy() = default;

std::shared_ptr<const Policy> Policy::allowAll() {
  auto model = std::make_unique<detail::PolicyModel>();
  model->allowAll = true;
  model->source = "(allow-all)";
  return std::make_shared<const Policy>(std::move(model));
}

std::size_t Policy::ruleCount() const {
  return model_->rules.size();
}
const std::string& Policy::source() const {
  return model_->source;
}

Decision Policy::decide(const Facts& facts) const {
  try {
    if (model_->allowAll)
      return {true, "allow-all", "allowed: authentication and policy are off (allow-all)"};
    const auto bit = actionBit(facts.action);
    if (!bit) return defaultDeny(facts);
    Probe probe(facts, !carriesArguments(*bit));
    const Buckets buckets = bucketsFor(*model_, *bit, facts.target.connector);
    // Deny overrides allow: the first deny that matches (or may match, for want of arguments)
    // decides; only then do allows count.
    Truth denyTruth = Truth::kFalse;
    if (const auto deny = firstInOrder(buckets, true, probe, [&](const Candidate& c) {
          denyTruth = matchRule(model_->rules[c.rule], probe, nullptr, c.connectorIndexed);
          return denyTruth != Truth::kFalse;
        })) {
      const Rule& rule = model_->rules[*deny];
      std::string reason = "denied by rule '" + rule.id + "' (effect deny";
      if (denyTruth == Truth::kUnknown)
        reason += "; its `when` needs the call's arguments, which were not given";
      return {false, rule.id, reason + ")"};
    }
    if (const auto allow = firstInOrder(buckets, false, probe, [&](const Candidate& c) {
          return matchRule(model_->rules[c.rule], probe, nullptr, c.connectorIndexed) == Truth::kTrue;
        })) {
      const Rule& rule = model_->rules[*allow];
      return {true, rule.id, "allowed by rule '" + rule.id + "' (effect allow)"};
    }
    return defaultDeny(facts);
  } catch (...) {  // only allocation can fail here; fail closed without allocating
    return Decision{};
  }
}

bool Policy::visible(const Facts& facts) const {
  try {
    if (model_->allowAll) return true;
    const auto bit = actionBit(facts.action);
    if (!bit) return false;
    // The action itself must be possible (a user never sees what it may not use). When some
    // rule names `list` explicitly, a deny for `list` that surely matches hides the item too.
    // An allow for `list` adds nothing: requiring one would make every call permission need a
    // matching list rule as well.
    const std::array<std::size_t, 2> bits = {*bit, 0};
    const std::size_t count = model_->mentionsList && facts.action != Action::kList ? 2 : 1;
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t b = bits[k];
      // Listing happens before any call: arguments are unknown (unless the caller has them), so a
      // `when` over args neither hides (deny) nor rules out (allow), for the list check too.
      Probe probe(facts, false);
      const Buckets buckets = bucketsFor(*model_, b, facts.target.connector);
      auto surely = [&](const Candidate& c) {
        return matchRule(model_->rules[c.rule], probe, nullptr, c.connectorIndexed) == Truth::kTrue;
      };
      auto possibly = [&](const Candidate& c) {
        return matchRule(model_->rules[c.rule], probe, nullptr, c.connectorIndexed) != Truth::kFalse;
      };
      if (firstInOrder(buckets, true, probe, surely)) return false;
      if (k == 0 && !firstInOrder(buckets, false, probe, possibly)) return false;
    }
    return true;
  } catch (...) {
    return false;
  }
}

std::vector<std::string> Policy::explain(const Facts& facts, Decision* decision) const {
  try {
    const Decision decided = decide(facts);
    if (decision != nullptr) *decision = decided;
    std::vector<std::string> lines;
    lines.push_back(std::string(decided.allowed ? "allowed" : "denied") + ": " + decided.reason);
    const auto bit = actionBit(facts.action);
    for (const Rule& rule : model_->rules) {
      std::string line = "rule '" + rule.id + "' (" + (rule.deny ? "deny" : "allow") + ", line " +
                         std::to_string(rule.line) + "): ";
      if (!bit || ((rule.actions >> *bit) & 1U) == 0) {
        std::vector<std::string> names;
        for (std::size_t b = 0; b < detail::kActionCount; ++b)
          if ((rule.actions >> b) & 1U) names.emplace_back(actionName(static_cast<Action>(1U << b)));
        lines.push_back(line + "no match: actions: " + std::string(actionName(facts.action)) + " is not in " +
                        listOf(names));
        continue;
      }
      Probe probe(facts, !carriesArguments(*bit));
      std::string whyNot;
      const Truth t = matchRule(rule, probe, &whyNot);
      const bool decides = rule.id == decided.ruleId;
      if (t == Truth::kTrue) {
        line += "matched";
      } else if (t == Truth::kUnknown) {
        line += rule.deny ? "matched (" + whyNot + ", which were not given: fail closed)"
                          : "no match: " + whyNot + ", which were not given";
      } else {
        line += "no match: " + whyNot;
      }
      lines.push_back(line + (decides ? " -> decides" : ""));
    }
    return lines;
  } catch (...) {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------
// PolicyStore

PolicyStore::PolicyStore(std::string path, std::shared_ptr<const Policy> initial)
    : path_(std::move(path)),
      current_(initial ? std::move(initial) : std::make_shared<const Policy>(nullptr)),
      loaded_(stampOf(path_)) {}

PolicyStore::FileStamp PolicyStore::stampOf(const std::string& path) {
  struct stat st {};
  FileStamp stamp;
  if (::stat(path.c_str(), &st) != 0) return stamp;
  stamp.exists = true;
  stamp.device = static_cast<std::uint64_t>(st.st_dev);
  stamp.inode = static_cast<std::uint64_t>(st.st_ino);
  stamp.size = static_cast<std::int64_t>(st.st_size);
  stamp.mtimeNanoseconds = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return stamp;
}

std::shared_ptr<const Policy> PolicyStore::current() const {
  const std::lock_guard lock(mutex_);
  return current_;
}

std::optional<std::string> PolicyStore::reload() {
  // Stamp before reading: an edit that lands while we read shows up as a change next time.
  const FileStamp stamp = stampOf(path_);
  auto loaded = Policy::loadFile(path_);
  const std::lock_guard lock(mutex_);
  loaded_ = stamp;
  if (!loaded) return loaded.error();
  current_ = std::move(*loaded);
  return std::nullopt;
}

bool PolicyStore::changedOnDisk() const {
  const FileStamp now = stampOf(path_);
  const std::lock_guard lock(mutex_);
  return !(now == loaded_);
}

const std::string& PolicyStore::path() const {
  return path_;
}

}  // namespace mcphost::policy
