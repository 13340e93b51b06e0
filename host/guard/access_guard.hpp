// What the router asks before it lists or runs anything: the policy decision (deny by default
// when a policy is configured), and for connectors with token_exchange, the RFC 8693 token the
// connector gets instead of the client's. Every refusal carries the rule that made it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/principal.hpp"
#include "common/expected.hpp"
#include "policy/policy.hpp"
#include "protocol/json_rpc.hpp"

namespace mcphost::guard {

inline constexpr int kForbidden = -32003;  // the policy refused; HTTP 403 on the stateless era

struct AccessTarget {
  std::string_view kind;       // tool, resource, prompt
  std::string_view connector;  // instance id
  std::string_view name;       // exposed name or URI
  const nlohmann::json* annotations = nullptr;
  // Data residency: the region of the instance the call was routed to (Catalog::Target::region
  // after Catalog::route()); empty for a connector without per-region instances. It selects
  // the tags the policy sees, so that `region:<name>` is the routed instance's.
  std::string_view region{};
};

class AccessGuard {
 public:
  using TokenBroker =
      std::function<Expected<std::string, std::string>(const auth::Principal&, const std::string&)>;
  struct ConnectorFacts {
    std::vector<std::string> tags;
    std::string tokenExchangeAudience;
    // Per-region instances: region -> the complete tags of that region's instance (tags plus
    // region:<name>); used instead of tags when AccessTarget::region names one.
    std::map<std::string, std::vector<std::string>, std::less<>> regionTags{};
  };

  // store null: everything is allowed (authentication and policy off, the loopback demo).
  AccessGuard(std::shared_ptr<policy::PolicyStore> store, std::map<std::string, ConnectorFacts> connectors,
              TokenBroker broker);

  // nullopt when allowed; else a -32003 error naming the rule. Logs every denial.
  [[nodiscard]] std::optional<protocol::RpcError> authorize(const auth::Principal& who, policy::Action action,
                                                            const AccessTarget& target,
                                                            const nlohmann::json* arguments) const;
  [[nodiscard]] bool visible(const auth::Principal& who, policy::Action action,
                             const AccessTarget& target) const;
  // Fills who.exchangedToken when the connector needs a backend-bound token.
  [[nodiscard]] std::optional<protocol::RpcError> prepareCaller(auth::Principal& who,
                                                                std::string_view connector) const;
  [[nodiscard]] bool enforcing() const { return store_ != nullptr; }
  // Whether the policy lets this caller see data unmasked that DLP rule `rule` would mask in
  // this target's results (action unmask, args.rule). False without a policy.
  [[nodiscard]] bool mayUnmask(const auth::Principal& who, const AccessTarget& target,
                               std::string_view rule) const;
  // The connector's classification tags (those of the routed region's instance when region is
  // set); null when the connector is unknown.
  [[nodiscard]] const std::vector<std::string>* connectorTags(std::string_view connector,
                                                              std::string_view region = {}) const;

 private:
  [[nodiscard]] policy::Facts facts(const auth::Principal& who, policy::Action action,
                                    const AccessTarget& target, const nlohmann::json* arguments) const;
  std::shared_ptr<policy::PolicyStore> store_;
  std::map<std::string, ConnectorFacts, std::less<>> connectors_;
  TokenBroker broker_;
};

}  // namespace mcphost::guard
