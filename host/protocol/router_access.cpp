// The router's side of authorization: per-caller list filtering and the check before an item
// is used. The decisions themselves are the policy's (guard/access_guard.hpp).
#include "protocol/mcp_router.hpp"

namespace mcphost::protocol {

Json McpRouter::visibleItems(ListKind kind, const RequestScope& scope) const {
  Json items;
  switch (kind) {
    case ListKind::kTools:
      items = catalog_.tools();
      break;
    case ListKind::kResources:
      items = catalog_.resources();
      break;
    case ListKind::kResourceTemplates:
      items = catalog_.resourceTemplates();
      break;
    case ListKind::kPrompts:
      items = catalog_.prompts();
      break;
  }
  if (!guard_ || !guard_->enforcing() || !items.is_array()) return items;
  Json visible = Json::array();
  for (auto& item : items) {
    std::optional<connectors::Catalog::Target> target;
    std::string name;
    guard::AccessTarget access;
    policy::Action action = policy::Action::kCallTool;
    switch (kind) {
      case ListKind::kTools:
        name = item.value("name", "");
        target = catalog_.findTool(name);
        access.kind = "tool";
        break;
      case ListKind::kResources:
        name = item.value("uri", "");
        target = catalog_.findResource(name);
        access.kind = "resource";
        action = policy::Action::kReadResource;
        break;
      case ListKind::kResourceTemplates:
        name = item.value("uriTemplate", "");
        target = catalog_.findTemplate(name);
        access.kind = "resource";
        action = policy::Action::kReadResource;
        break;
      case ListKind::kPrompts:
        name = item.value("name", "");
        target = catalog_.findPrompt(name);
        access.kind = "prompt";
        action = policy::Action::kGetPrompt;
        break;
    }
    if (!target) continue;  // changed under us; the next list shows it
    access.connector = target->connectorId;
    access.name = name;
    std::string region;  // outlives `access`, which keeps a view of it
    if (target->regional) {
      // The region's tags when the caller can be routed; otherwise the base tags, and the call
      // itself explains why it cannot be routed.
      if (auto routed = catalog_.route(*target, scope.caller)) region = routed->region;
      access.region = region;
    }
    const auto annotations = item.find("annotations");
    access.annotations = annotations != item.end() && annotations->is_object() ? &*annotations : nullptr;
    if (guard_->visible(scope.caller, action, access)) visible.push_back(std::move(item));
  }
  return visible;
}

bool McpRouter::mayCallTool(const connectors::Caller& who, std::string_view exposedName) const {
  if (!guard_ || !guard_->enforcing()) return true;
  const auto target = catalog_.findTool(exposedName);
  if (!target) return true;  // the router explains unknown tools
  const Json annotations = catalog_.toolAnnotations(exposedName);
  guard::AccessTarget access{"tool", target->connectorId, exposedName, &annotations};
  std::optional<connectors::Catalog::Target> routed;
  if (target->regional) {
    if (auto r = catalog_.route(*target, who)) routed = std::move(r.value());
    if (routed) access.region = routed->region;
  }
  return guard_->visible(who, policy::Action::kCallTool, access);
}

std::optional<RpcError> McpRouter::checkAccess(policy::Action action, std::string_view kind,
                                               connectors::Catalog::Target& target,
                                               std::string_view exposedName, const Json* arguments,
                                               RequestScope& scope) const {
  // Routing comes first, so the policy decides on the instance that would serve the call (its
  // region tag) and a caller without a matching region is refused before anything runs.
  if (target.regional) {
    auto routed = catalog_.route(target, scope.caller);
    if (!routed) return routed.error();
    target = std::move(routed.value());
    scope.audit.region = target.region;
  }
  if (!guard_) return std::nullopt;
  Json annotations;
  guard::AccessTarget access{kind, target.connectorId, exposedName, nullptr, target.region};
  if (kind == "tool") {
    annotations = catalog_.toolAnnotations(exposedName);
    access.annotations = &annotations;
  }
  // A completion carries no tool arguments: decide it as a call without any.
  static const Json kNoArguments = Json::object();
  if (arguments == nullptr && action == policy::Action::kComplete) arguments = &kNoArguments;
  if (auto refused = guard_->authorize(scope.caller, action, access, arguments)) {
    if (guard_->enforcing()) {
      scope.audit.decision = "deny";
      if (refused->data.is_object()) scope.audit.rule = refused->data.value("rule", "");
    }
    return refused;
  }
  if (guard_->enforcing()) scope.audit.decision = "allow";
  return guard_->prepareCaller(scope.caller, target.connectorId);
}

}  // namespace mcphost::protocol
