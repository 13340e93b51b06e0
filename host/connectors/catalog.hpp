// The merged view of every configured connector instance: tools and prompts under a per-instance
// namespace (`<instance><separator><name>`, unless the instance opts out), resources by URI.
// Rebuilt on a connector's list_changed; readers always see one consistent snapshot.
//
// Data residency: instances that share one id but carry different regions form a regional
// group. Its items are listed once, under the one id, taken from the first region (in
// configuration order) that describes itself successfully; regions are expected to run the
// same connector, so items only one region offers are not listed. A lookup of a group's item
// returns an unrouted Target (regional, no region) whose connector refuses everything: the
// router must call route() with the caller before it checks policy or uses the connector.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "connectors/connector.hpp"
#include "protocol/change_bus.hpp"

namespace mcphost::connectors {

// Routing refused the caller (no instance for their region); the value of guard::kForbidden,
// so clients see the same code as for a policy refusal.
inline constexpr int kRegionRefused = -32003;

struct ConnectorInstance {
  std::string id;  // the exposed id (the prefix); shared by the instances of a regional group
  bool prefixed = true;
  std::shared_ptr<Connector> connector;
  std::string region{};         // empty = not regional
  std::string defaultRegion{};  // regional: where callers without a region go; empty = refuse them
};

class Catalog {
 public:
  struct Target {
    std::shared_ptr<Connector> connector;
    std::string connectorId;
    std::string localName;  // tool or prompt name as the connector knows it; or the resource URI
    // The item belongs to a regional group: route() must pick the instance (findX leaves
    // region empty and connector refusing). After route(), region is the chosen instance's.
    bool regional = false;
    std::string region{};
  };

  // regionAttribute: the principal attribute (principal.attributes[...]) that names the
  // caller's region for routing to a regional group.
  Catalog(std::vector<ConnectorInstance> instances, std::string separator,
          std::shared_ptr<protocol::ChangeBus> bus, std::string regionAttribute = "region");
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Describes every connector and builds the merged lists. A name collision is an error naming
  // both connectors; a connector that fails to describe itself is logged and left out.
  Expected<bool, std::string> load();

  [[nodiscard]] Json tools() const;
  [[nodiscard]] Json prompts() const;
  [[nodiscard]] Json resources() const;
  [[nodiscard]] Json resourceTemplates() const;
  [[nodiscard]] std::optional<Target> findTool(std::string_view name) const;
  // The inputSchema of one exposed tool (null when unknown), without copying the whole list.
  [[nodiscard]] Json toolInputSchema(std::string_view name) const;
  [[nodiscard]] Json toolAnnotations(std::string_view name) const;  // {} when none
  [[nodiscard]] std::optional<Target> findPrompt(std::string_view name) const;
  // Exact resource URI first, then the first template that matches.
  [[nodiscard]] std::optional<Target> findResource(std::string_view uri) const;
  [[nodiscard]] std::optional<Target> findTemplate(std::string_view uriTemplate) const;
  // Data residency: a non-regional target unchanged; for a regional group, the instance of the
  // caller's region attribute (compared in lower case), or, when the caller has no such
  // attribute, the group's default region. A caller whose region has no instance is refused
  // even when there is a default (their data must not leave their region), and so is a call to
  // a region whose instance is unavailable (never a silent fallback to another region).
  // Refusals are kRegionRefused; an unavailable instance is -32603.
  [[nodiscard]] Expected<Target, protocol::RpcError> route(const Target& target, const Caller& caller) const;
  // Each exposed id once (a regional group is one id).
  [[nodiscard]] std::vector<std::string> connectorIds() const;
  // Ids with nothing available: a regional group only when every one of its regions is down.
  [[nodiscard]] std::vector<std::string> unavailableConnectors() const;
  // The down instances of regional groups ("id@region" -> why), including those of groups
  // that are otherwise available: their region's callers are refused.
  [[nodiscard]] std::map<std::string, std::string, std::less<>> unavailableRegions() const;
  // Why the connector whose prefix this exposed name carries is unavailable, if it is.
  [[nodiscard]] std::optional<std::string> unavailableReason(std::string_view exposedName) const;

 private:
  struct Snapshot;
  class Events;
  struct Group {
    std::vector<const ConnectorInstance*> members;  // in configuration order
    std::string defaultRegion;
    std::shared_ptr<Connector> unrouted;  // what an unrouted Target carries: refuses everything
  };

  Expected<std::shared_ptr<const Snapshot>, std::string> build() const;
  void refresh(protocol::ChangeKind kind);
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;

  std::vector<ConnectorInstance> instances_;
  std::string separator_;
  std::string regionAttribute_;
  std::map<std::string, Group, std::less<>> groups_;  // regional groups by id; fixed after construction
  std::string groupError_;                            // inconsistent instances; load() reports it
  std::shared_ptr<protocol::ChangeBus> bus_;
  std::vector<std::unique_ptr<Events>> events_;
  mutable std::mutex mutex_;
  std::mutex refreshMutex_;  // one rebuild at a time, so an older snapshot never replaces a newer one
  std::shared_ptr<const Snapshot> snapshot_;
};

// RFC 6570 level-1 match of a URI against a template such as `test://template/{id}/data`.
bool uriMatchesTemplate(std::string_view uri, std::string_view uriTemplate);

}  // namespace mcphost::connectors
