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

namespace mcphost::policy::detail {

inline constexpr std::size_t kActionCount = 5;
inline constexpr std::uint8_t kAllActions = 0x1f;

// '*' matches any run of characters (also none), '?' exactly one; everything else literally.
bool globMatch(std::string_view pattern, std::string_view text) noexcept;

// A list of names where exact entries are looked up by binary search and only the patterns
// with '*' or '?' are matched one by one. An unconfigured matcher (the key was omitted)
// matches everything.
class NameMatcher {
 public:
  void add(std::string pattern);
  void finish();  // sorts the exact names; call once after the last add()

  [[nodiscard]] bool configured() const { return configured_; }
  [[nodiscard]] bool matchesEverything() const { return !configured_ || any_; }
  [[nodiscard]] bool matches(std::string_view name) const noexcept;
  [[nodiscard]] bool matchesAnyOf(const std::vector<std::string>& names) const noexcept;
  // Exact entries only (no globs, no "*"): the connector index can file the rule under them.
  [[nodiscard]] bool exactOnly() const { return configured_ && !any_ && globs_.empty(); }
  [[nodiscard]] const std::vector<std::string>& exact() const { return exact_; }
  [[nodiscard]] std::string describe() const;  // "[hr, fin-*]" in the order written
  // The longest literal text every name this matcher accepts starts with ("" when any may do).
  [[nodiscard]] std::string literalPrefix() const;
  // The nameBit()s of the exact names; 0 (no filter) unless exactOnly().
  [[nodiscard]] std::uint64_t bloom() const;

 private:
  bool configured_ = false;
  bool any_ = false;
  std::vector<std::string> exact_;
  std::vector<std::string> globs_;
  std::vector<std::string> written_;
};

struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> address{};  // network bytes; IPv4 uses the first 4
  std::uint8_t prefix = 0;
  std::string text;
};

// A peer address in binary; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4.
struct IpAddress {
  bool valid = false;
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
};
IpAddress parseIp(std::string_view text) noexcept;
bool cidrContains(const Cidr& cidr, const IpAddress& ip) noexcept;

// Minutes of the day in a fixed-offset zone; `to` is exclusive and may be smaller than `from`
// (the window wraps past midnight and belongs to the day it starts on).
struct TimeWindow {
  std::uint8_t days = 0x7f;  // bit 0 = Monday ... bit 6 = Sunday
  std::uint16_t from = 0;
  std::uint16_t to = 24 * 60;
  std::int32_t offsetMinutes = 0;
  std::string text;  // "mon-fri 08:00-18:00 UTC" for explain
};
bool timeWindowContains(const TimeWindow& window, std::int64_t epochSeconds) noexcept;
std::string describeTime(std::int64_t epochSeconds, std::int32_t offsetMinutes);

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

// One bit of a 64-bit Bloom filter per name: a rule that needs one of its exact groups, roles
// or users is rejected without reading the rule when the principal has none of the bits.
inline std::uint64_t nameBit(std::string_view name) noexcept {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
  for (const char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  // FNV leaves the top bits of short, similar names ("g16", "g26") alike: mix before choosing.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return std::uint64_t{1} << (h >> 58);
}

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
