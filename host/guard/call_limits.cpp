#include "guard/call_limits.hpp"

namespace mcphost::guard {

namespace {

std::chrono::seconds roundUpSeconds(std::chrono::milliseconds wait) {
  return std::chrono::seconds(std::max<long long>(1, (wait.count() + 999) / 1000));
}

}  // namespace

Expected<std::unique_ptr<CallLimits>, std::string> CallLimits::create(const config::RateLimitConfig& config) {
  auto limits = std::make_unique<CallLimits>();
  auto build = [](const std::string& rate, double burst) -> Expected<Scope, std::string> {
    auto spec = parseRate(rate, burst);
    if (!spec) return unexpected("rate_limits: " + spec.error());
    return Scope{std::make_unique<RateLimiter>(*spec), rate};
  };
  if (!config.perPrincipal.empty()) {
    auto scope = build(config.perPrincipal, config.perPrincipalBurst);
    if (!scope) return unexpected(scope.error());
    limits->perPrincipal_ = std::move(scope.value());
  }
  for (const auto& [name, rate] : config.perConnector) {
    auto scope = build(rate, 0);
    if (!scope) return unexpected(scope.error());
    limits->perConnector_.emplace(name, std::move(scope.value()));
  }
  for (const auto& [name, rate] : config.perTool) {
    auto scope = build(rate, 0);
    if (!scope) return unexpected(scope.error());
    limits->perTool_.emplace(name, std::move(scope.value()));
  }
  return limits;
}

bool CallLimits::empty() const {
  return !perPrincipal_ && perConnector_.empty() && perTool_.empty();
}

std::optional<LimitRefusal> CallLimits::admitRequest(const std::string& subject) {
  if (!perPrincipal_) return std::nullopt;
  auto wait = perPrincipal_->limiter->acquire(subject);
  if (!wait) return std::nullopt;
  const auto seconds = roundUpSeconds(*wait);
  return LimitRefusal{"rate limit exceeded for " + subject + " (" + perPrincipal_->rate +
                          " per principal); retry in " + std::to_string(seconds.count()) + " s",
                      seconds};
}

std::optional<LimitRefusal> CallLimits::admit(ScopeMap& scopes, std::string_view name, const char* what) {
  auto it = scopes.find(name);
  if (it == scopes.end()) it = scopes.find("*");
  if (it == scopes.end()) return std::nullopt;
  auto wait = it->second.limiter->acquire(name);
  if (!wait) return std::nullopt;
  const auto seconds = roundUpSeconds(*wait);
  return LimitRefusal{"rate limit exceeded for " + std::string(what) + " '" + std::string(name) + "' (" +
                          it->second.rate + "); retry in " + std::to_string(seconds.count()) + " s",
                      seconds};
}

std::optional<LimitRefusal> CallLimits::admitToolCall(std::string_view connectorId,
                                                      std::string_view toolName) {
  if (auto refusal = admit(perConnector_, connectorId, "connector")) return refusal;
  return admit(perTool_, toolName, "tool");
}

}  // namespace mcphost::guard
