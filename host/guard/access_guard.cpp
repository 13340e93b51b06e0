#include "guard/access_guard.hpp"

#include "observe/log.hpp"
#include "observe/metrics.hpp"

namespace mcphost::guard {

AccessGuard::AccessGuard(std::shared_ptr<policy::PolicyStore> store,
                         std::map<std::string, ConnectorFacts> connectors, TokenBroker broker)
    : store_(std::move(store)),
      connectors_(connectors.begin(), connectors.end()),
      broker_(std::move(broker)) {}

policy::Facts AccessGuard::facts(const auth::Principal& who, policy::Action action,
                                 const AccessTarget& target, const nlohmann::json* arguments) const {
  const std::vector<std::string>* tags = nullptr;
  if (auto it = connectors_.find(target.connector); it != connectors_.end()) {
    tags = &it->second.tags;
    // A routed call sees its region's tags; a region the guard does not know keeps the shared
    // tags (without any region: tag), so a rule requiring a region tag cannot allow it.
    if (auto region = it->second.regionTags.find(target.region);
        !target.region.empty() && region != it->second.regionTags.end()) {
      tags = &region->second;
    }
  }
  policy::Target t;
  t.kind = target.kind;
  t.connector = target.connector;
  t.name = target.name;
  t.annotations = target.annotations;
  t.tags = tags;
  return policy::Facts{who, action, t, arguments, std::chrono::system_clock::now()};
}

std::optional<protocol::RpcError> AccessGuard::authorize(const auth::Principal& who, policy::Action action,
                                                         const AccessTarget& target,
                                                         const nlohmann::json* arguments) const {
  if (!store_) return std::nullopt;
  const auto policy = store_->current();
  const auto decision = policy->decide(facts(who, action, target, arguments));
  if (decision.allowed) return std::nullopt;
  observe::Metrics::instance().countPolicyDenial();
  log::info("policy", "denied",
            {{"subject", who.subject},
             {"auth_method", who.authMethod},
             {"action", std::string(policy::actionName(action))},
             {"connector", std::string(target.connector)},
             {"target", std::string(target.name)},
             {"rule", decision.ruleId.empty() ? "default-deny" : decision.ruleId},
             {"reason", decision.reason}});
  return protocol::RpcError{kForbidden,
                            "Forbidden: " + decision.reason,
                            {{"rule", decision.ruleId.empty() ? "default-deny" : decision.ruleId},
                             {"action", std::string(policy::actionName(action))},
                             {"target", std::string(target.name)}}};
}

bool AccessGuard::visible(const auth::Principal& who, policy::Action action,
                          const AccessTarget& target) const {
  if (!store_) return true;
  return store_->current()->visible(facts(who, action, target, nullptr));
}

std::optional<protocol::RpcError> AccessGuard::prepareCaller(auth::Principal& who,
                                                             std::string_view connector) const {
  auto it = connectors_.find(connector);
  if (it == connectors_.end() || it->second.tokenExchangeAudience.empty()) return std::nullopt;
  if (!broker_) {
    return protocol::RpcError{
        protocol::errc::kInternalError,
        "connector '" + std::string(connector) + "' needs token exchange, which is not configured", nullptr};
  }
  auto token = broker_(who, it->second.tokenExchangeAudience);
  if (!token) {
    log::warn("auth", "token exchange failed",
              {{"subject", who.subject}, {"connector", std::string(connector)}, {"reason", token.error()}});
    return protocol::RpcError{kForbidden,
                              "Forbidden: connector '" + std::string(connector) +
                                  "' acts as you downstream and the token exchange failed: " + token.error(),
                              nullptr};
  }
  who.exchangedToken = std::move(token.value());
  return std::nullopt;
}

bool AccessGuard::mayUnmask(const auth::Principal& who, const AccessTarget& target,
                            std::string_view rule) const {
  if (!store_) return false;
  const nlohmann::json arguments = {{"rule", std::string(rule)}};
  return store_->current()->decide(facts(who, policy::Action::kUnmask, target, &arguments)).allowed;
}

const std::vector<std::string>* AccessGuard::connectorTags(std::string_view connector,
                                                           std::string_view region) const {
  auto it = connectors_.find(connector);
  if (it == connectors_.end()) return nullptr;
  if (auto r = it->second.regionTags.find(region); !region.empty() && r != it->second.regionTags.end())
    return &r->second;
  return &it->second.tags;
}

}  // namespace mcphost::guard
