// The merged view of every configured connector instance: tools and prompts under a per-instance
// namespace (`<instance><separator><name>`, unless the instance opts out), resources by URI.
// Rebuilt on a connector's list_changed; readers always see one consistent snapshot.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "connectors/connector.hpp"
#include "protocol/change_bus.hpp"

namespace mcphost::connectors {

struct ConnectorInstance {
  std::string id;
  bool prefixed = true;
  std::shared_ptr<Connector> connector;
};

class Catalog {
 public:
  struct Target {
    std::shared_ptr<Connector> connector;
    std::string connectorId;
    std::string localName;  // tool or prompt name as the connector knows it; or the resource URI
  };

  Catalog(std::vector<ConnectorInstance> instances, std::string separator,
          std::shared_ptr<protocol::ChangeBus> bus);
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
  [[nodiscard]] std::vector<std::string> connectorIds() const;
  [[nodiscard]] std::vector<std::string> unavailableConnectors() const;
  // Why the connector whose prefix this exposed name carries is unavailable, if it is.
  [[nodiscard]] std::optional<std::string> unavailableReason(std::string_view exposedName) const;

 private:
  struct Snapshot;
  class Events;

  Expected<std::shared_ptr<const Snapshot>, std::string> build() const;
  void refresh(protocol::ChangeKind kind);
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;

  std::vector<ConnectorInstance> instances_;
  std::string separator_;
  std::shared_ptr<protocol::ChangeBus> bus_;
  std::vector<std::unique_ptr<Events>> events_;
  mutable std::mutex mutex_;
  std::mutex refreshMutex_;  // one rebuild at a time, so an older snapshot never replaces a newer one
  std::shared_ptr<const Snapshot> snapshot_;
};

// RFC 6570 level-1 match of a URI against a template such as `test://template/{id}/data`.
bool uriMatchesTemplate(std::string_view uri, std::string_view uriTemplate);

}  // namespace mcphost::connectors
