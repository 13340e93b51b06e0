// Process-wide fan-out of catalog changes (list_changed, resource updated) to every listener:
// 2025 sessions' standalone streams and 2026 `subscriptions/listen` streams alike.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace mcphost::protocol {

enum class ChangeKind { kToolsListChanged, kPromptsListChanged, kResourcesListChanged, kResourceUpdated };

class ChangeBus : public std::enable_shared_from_this<ChangeBus> {
 public:
  using Listener = std::function<void(ChangeKind kind, std::string_view uri)>;

  // The listener stays registered while the returned token lives.
  [[nodiscard]] std::shared_ptr<void> subscribe(Listener listener);
  void publish(ChangeKind kind, std::string_view uri = {});

 private:
  std::mutex mutex_;
  std::uint64_t nextId_ = 0;
  std::map<std::uint64_t, std::shared_ptr<Listener>> listeners_;
};

}  // namespace mcphost::protocol
