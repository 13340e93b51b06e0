// The configured rate limits (rate_limits:): one token bucket per principal, per connector and
// per tool. Over a limit the caller learns which limit and when to retry (HTTP 429 Retry-After).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/expected.hpp"
#include "config/config.hpp"
#include "guard/rate_limiter.hpp"

namespace mcphost::guard {

// JSON-RPC code of a rate-limit refusal (HTTP answers 429 with Retry-After as well).
inline constexpr int kRateLimited = -32029;

struct LimitRefusal {
  std::string message;  // e.g. "rate limit exceeded for tool 'hr__query' (5/s); retry in 1 s"
  std::chrono::seconds retryAfter{1};
};

class CallLimits {
 public:
  static Expected<std::unique_ptr<CallLimits>, std::string> create(const config::RateLimitConfig& config);
  [[nodiscard]] bool empty() const;
  std::optional<LimitRefusal> admitRequest(const std::string& subject);
  std::optional<LimitRefusal> admitToolCall(std::string_view connectorId, std::string_view toolName);

 private:
  struct Scope {
    std::unique_ptr<RateLimiter> limiter;
    std::string rate;
  };
  // name -> its own bucket set; "*" applies to every name without an entry of its own.
  using ScopeMap = std::map<std::string, Scope, std::less<>>;
  static std::optional<LimitRefusal> admit(ScopeMap& scopes, std::string_view name, const char* what);

  std::optional<Scope> perPrincipal_;
  ScopeMap perConnector_;
  ScopeMap perTool_;
};

}  // namespace mcphost::guard
