// Data-loss prevention for MCP results: rules pick detectors (detectors.hpp) for a target
// (connector, tool/prompt/resource, JSON pointers, classification) and say what happens to a
// finding. The Engine is immutable after create() and shared by every request thread.
//
// Actions on a matched value:
//   mask          every character except the last four "significant" ones becomes '*';
//                 separators ' ', '\t', '\r', '\n', '-', '.', '@', '(', ')', '+', ':' stay,
//                 so "4111 1111 1111 1234" -> "**** **** **** 1234" and
//                 "jane.doe@example.com" -> "****.***@******e.com". A value with fewer than
//                 eight significant characters (10.0.0.1, short custom ids) is masked fully,
//                 because its last four would reveal most of it. Non-ASCII characters count
//                 as one character each and become one '*'.
//   redact        "[REDACTED:<detector>]"
//   pseudonymize  "<detector>_" + the first 16 hex digits of
//                 HMAC-SHA256(HMAC-SHA256(pseudonymKey, "tenant:" + tenant), normalized value):
//                 stable within a tenant (joins still work), unlinkable across tenants.
//                 Normalized: e-mail and IP lowercased; card, phone, SSN digits only; IBAN
//                 upper-case without spaces; others as matched.
//   block         the host replaces the whole result; protect() stops at the first finding.
// Matched values never leave the transformed result: findings carry names and counts only.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "dlp/secret_scan.hpp"

namespace mcphost::dlp {

enum class Action { kMask, kRedact, kPseudonymize, kBlock };
std::optional<Action> parseAction(std::string_view name);  // "mask", "redact", "pseudonymize", "block"
std::string_view actionName(Action action);

struct CustomDetector {
  std::string name;       // [A-Za-z0-9_.-]+, not a built-in name
  std::string pattern;    // RE2 syntax; may not match the empty string
  std::string validator;  // "", "luhn", "iban"
};

struct RuleConfig {
  std::string name;
  std::vector<std::string> detectors;  // detector names; "*" = every detector
  Action action = Action::kMask;
  std::vector<std::string> connectors;  // globs on connector instance ids; empty = all
  std::vector<std::string> items;       // globs on exposed tool/prompt names or resource URIs; empty = all
  // JSON pointers into structuredContent ("*" segment = any key or index); the rule covers the
  // node and everything below it, and nothing outside structuredContent. Empty = the whole result.
  std::vector<std::string> pointers;
  std::vector<std::string> classifications;  // the connector must carry one of these; empty = any
};

struct Settings {
  std::vector<CustomDetector> detectors;
  std::vector<RuleConfig> rules;
  std::string pseudonymKey;  // raw key bytes; required (>= 32 bytes) when a rule pseudonymizes
  bool scanInboundSecrets = false;
  // Findings per protect() call beyond which the result is blocked (blockedBy = kFindingLimit):
  // bounds the memory a hostile or huge result can make the engine spend.
  std::size_t maxFindings = 100000;
};

inline constexpr std::string_view kFindingLimit = "dlp:finding-limit";
inline constexpr std::string_view kInternalError = "dlp:error";

struct Finding {
  std::string detector;
  std::string rule;
  Action action = Action::kMask;
  std::size_t count = 0;
};

struct ScanTarget {
  std::string_view kind;                                      // "tool", "resource", "prompt"
  std::string_view connector;                                 // instance id
  std::string_view name;                                      // exposed tool/prompt name or resource URI
  const std::vector<std::string>* classifications = nullptr;  // the connector's tags
  std::string_view tenant;                                    // pseudonym scope
};

struct Protection {
  std::vector<Finding> findings;         // per (detector, rule), in rule order
  std::optional<std::string> blockedBy;  // rule name, kFindingLimit or kInternalError
  std::size_t bytesScanned = 0;
};

// The mask transformation described above (exposed for tests and for callers that mask
// values they already know are sensitive).
std::string maskValue(std::string_view value);

class Engine {
 public:
  struct Impl;

  // Compiles every detector once (built-ins + custom). Errors name the rule or detector and
  // the problem: unknown detector, invalid RE2 pattern, unknown validator, missing pseudonym
  // key, bad pointer, duplicate or empty names.
  static Expected<std::shared_ptr<const Engine>, std::string> create(const Settings& settings);

  // No rules and no inbound scan: the host can skip the walk entirely.
  [[nodiscard]] bool empty() const;

  // Applies the rules that select this target to an MCP result in place. exempt(ruleName)
  // == true skips that rule for this caller. On block the result may be partially modified
  // and must be replaced. Never throws (internal errors block with kInternalError).
  Protection protect(nlohmann::json& result, const ScanTarget& target,
                     const std::function<bool(std::string_view)>& exempt) const;

  // Only when scanInboundSecrets (otherwise empty): see secret_scan.hpp.
  [[nodiscard]] std::vector<SecretFinding> findSecrets(const nlohmann::json& arguments) const;
  // Always available (audit redaction does not depend on rules): see secret_scan.hpp.
  [[nodiscard]] nlohmann::json redactForAudit(const nlohmann::json& arguments) const;

  static std::vector<std::string> builtinDetectorNames();

  explicit Engine(std::unique_ptr<const Impl> impl);  // use create()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

 private:
  std::unique_ptr<const Impl> impl_;
};

}  // namespace mcphost::dlp
