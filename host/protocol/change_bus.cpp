#include "protocol/change_bus.hpp"

#include <vector>

namespace mcphost::protocol {

std::shared_ptr<void> ChangeBus::subscribe(Listener listener) {
  std::lock_guard lock(mutex_);
  const auto id = nextId_++;
  listeners_.emplace(id, std::make_shared<Listener>(std::move(listener)));
  std::weak_ptr<ChangeBus> weak = weak_from_this();
  return std::shared_ptr<void>(nullptr, [weak, id](void*) {
    if (auto bus = weak.lock()) {
      std::lock_guard busLock(bus->mutex_);
      bus->listeners_.erase(id);
    }
  });
}

void ChangeBus::publish(ChangeKind kind, std::string_view uri) {
  std::vector<std::shared_ptr<Listener>> snapshot;
  {
    std::lock_guard lock(mutex_);
    snapshot.reserve(listeners_.size());
    for (auto& [id, l] : listeners_) snapshot.push_back(l);
  }
  // Called outside the lock so a listener may unsubscribe or publish.
  for (auto& l : snapshot) (*l)(kind, uri);
}

}  // namespace mcphost::protocol
