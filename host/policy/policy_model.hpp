// The compiled form of a policy, shared by the loader (policy_loader.cpp) and the evaluator
// (policy.cpp). Everything a decision needs is precomputed here: action bitmasks, exact names
// in sorted vectors beside glob lists, CIDRs in binary, time windows in minutes, expressions
// compiled, and rules indexed by action and connector.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/expression.hpp"
#include "policy/policy.hpp"
#include "policy/policy_matchers.hpp"

namespace mcphost::policy::detail {

inline constexpr std::size_t kActionCount = 6;
// What "*" grants: every action but unmask, which must be named.
inline constexpr std::uint8_t kAllActions = 0x1f;

struct ClaimMatcher {
  std::string name;
  std::vector<nlohmann::json> values;  // the claim must equal one of them (JSON types matter)
};

struct Rule {
  std::string id;
  std::string description;
  int line = 0;
  bool deny = false;
  std::uint8_t actions = 0;  // Action bits
  // subjects
  NameMatcher users, groups, roles, authMethods, tenants, scopes;
  std::vector<ClaimMatcher> claims;
  // targets
  NameMatcher kinds, connectors, names, tags;
  std::vector<std::pair<std::string, nlohmann::json>> annotations;
  // conditions
  std::vector<TimeWindow> time;   // any window
  std::vector<Cidr> sourceCidrs;  // any range
  std::optional<Expression> when;
};

// A rule filed in a bucket, with what can reject it from this small contiguous array without
// touching the rule: literal prefixes every connector and every name it matches start with
// ("lab-" for [lab-*, lab-x]), and Bloom bits of its exact subject lists (0 = no filter).
struct Candidate {
  std::uint32_t rule = 0;
  bool connectorIndexed = false;  // filed under the exact connector id: no need to test it again
  std::string connectorPrefix;
  std::string namePrefix;
  std::uint64_t usersBloom = 0;
  std::uint64_t groupsBloom = 0;
  std::uint64_t rolesBloom = 0;
};

// Candidates in file order, denies and allows apart so a deny can end the search.
struct Bucket {
  std::vector<Candidate> denies;
  std::vector<Candidate> allows;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct PolicyModel {
  std::string source;
  bool allowAll = false;
  bool mentionsList = false;  // some rule names the list action explicitly
  std::vector<Rule> rules;
  // Per action bit, three places a rule can be filed; a decision looks at the three buckets
  // its connector selects. Exact connector ids: by id. Connector globs with a literal prefix
  // (lab-*): by the prefix's first byte, so they cost nothing for other connectors. The rest
  // (no connector matcher, "*", or a glob that starts with a wildcard): in anyConnector.
  std::array<std::unordered_map<std::string, Bucket, StringHash, std::equal_to<>>, kActionCount> byConnector;
  std::array<std::array<Bucket, 256>, kActionCount> byConnectorStart;
  std::array<Bucket, kActionCount> anyConnector;

  void buildIndex();
};

}  // namespace mcphost::policy::detail
