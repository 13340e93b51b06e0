#include "connectors/catalog.hpp"

#include <map>

#include "observe/log.hpp"

namespace mcphost::connectors {

struct Catalog::Snapshot {
  Json tools = Json::array();
  Json prompts = Json::array();
  Json resources = Json::array();
  Json resourceTemplates = Json::array();
  std::map<std::string, Target, std::less<>> toolIndex;
  std::map<std::string, Json, std::less<>> toolSchemas;
  std::map<std::string, Json, std::less<>> toolAnnotations;  // for policy targets
  std::map<std::string, Target, std::less<>> promptIndex;
  std::map<std::string, Target, std::less<>> resourceIndex;
  std::vector<std::pair<std::string, Target>> templateIndex;
  std::vector<std::string> unavailable;
  std::map<std::string, std::string, std::less<>> unavailableReasons;  // id -> why
};

class Catalog::Events final : public ConnectorEvents {
 public:
  explicit Events(Catalog& catalog) : catalog_(catalog) {}
  void toolsChanged() override { catalog_.refresh(protocol::ChangeKind::kToolsListChanged); }
  void promptsChanged() override { catalog_.refresh(protocol::ChangeKind::kPromptsListChanged); }
  void resourcesChanged() override { catalog_.refresh(protocol::ChangeKind::kResourcesListChanged); }
  void resourceUpdated(std::string_view uri) override {
    catalog_.bus_->publish(protocol::ChangeKind::kResourceUpdated, uri);
  }

 private:
  Catalog& catalog_;
};

namespace {

// The rule most MCP clients enforce on tool names.
bool isClientSafeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == '/';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool uriMatchesTemplate(std::string_view uri, std::string_view uriTemplate) {
  // Iterative matcher (no std::regex: its recursion depth grows with the input, and URIs come
  // from clients). A {variable} matches one or more characters other than / ? #; the literal
  // text after it decides where the variable ends, which is unambiguous because variables
  // cannot contain '/'.
  std::size_t u = 0;
  std::size_t t = 0;
  while (t < uriTemplate.size()) {
    if (uriTemplate[t] == '{') {
      const auto close = uriTemplate.find('}', t);
      if (close == std::string_view::npos) return false;
      t = close + 1;
      const std::size_t start = u;
      while (u < uri.size() && uri[u] != '/' && uri[u] != '?' && uri[u] != '#') {
        // Stop early when the rest of the template's literal run matches here.
        const auto nextVar = uriTemplate.find('{', t);
        const std::string_view literal =
            uriTemplate.substr(t, nextVar == std::string_view::npos ? std::string_view::npos : nextVar - t);
        if (!literal.empty() && u > start && uri.substr(u).starts_with(literal)) break;
        ++u;
      }
      if (u == start) return false;
      continue;
    }
    if (u >= uri.size() || uri[u] != uriTemplate[t]) return false;
    ++u;
    ++t;
  }
  return u == uri.size();
}

Catalog::Catalog(std::vector<ConnectorInstance> instances, std::string separator,
                 std::shared_ptr<protocol::ChangeBus> bus)
    : instances_(std::move(instances)),
      separator_(std::move(separator)),
      bus_(std::move(bus)),
      snapshot_(std::make_shared<Snapshot>()) {
  for (auto& instance : instances_) {
    events_.push_back(std::make_unique<Events>(*this));
    instance.connector->attach(events_.back().get());
  }
}

Catalog::~Catalog() {
  for (auto& instance : instances_) instance.connector->attach(nullptr);
}

Expected<std::shared_ptr<const Catalog::Snapshot>, std::string> Catalog::build() const {
  auto snap = std::make_shared<Snapshot>();
  std::map<std::string, std::string> toolOwner;
  std::map<std::string, std::string> promptOwner;
  for (const auto& instance : instances_) {
    auto described = instance.connector->describe();
    if (!described) {
      log::warn("catalog", "connector is unavailable; its items are left out",
                {{"connector", instance.id}, {"error", described.error().message}});
      snap->unavailable.push_back(instance.id);
      snap->unavailableReasons[instance.id] = described.error().message;
      continue;
    }
    auto exposedName = [&](const std::string& local) {
      return instance.prefixed ? instance.id + separator_ + local : local;
    };
    auto addNamed = [&](const Json& items, Json& out, std::map<std::string, Target, std::less<>>& index,
                        std::map<std::string, std::string>& owner,
                        const char* kind) -> std::optional<std::string> {
      for (const auto& item : items) {
        if (!item.is_object() || !item.contains("name") || !item["name"].is_string()) continue;
        const std::string local = item["name"].get<std::string>();
        const std::string name = exposedName(local);
        if (!isClientSafeName(name)) {
          log::warn("catalog", "name is not valid for MCP clients; left out",
                    {{"connector", instance.id}, {"kind", kind}, {"name", name}});
          continue;
        }
        if (auto [it, inserted] = owner.emplace(name, instance.id); !inserted) {
          return std::string(kind) + " name '" + name + "' is offered by both connector '" + it->second +
                 "' and connector '" + instance.id +
                 "'; give one of them a prefix (prefix: true) or rename the instance";
        }
        Json exposed = item;
        exposed["name"] = name;
        out.push_back(std::move(exposed));
        index.emplace(name, Target{instance.connector, instance.id, local});
      }
      return std::nullopt;
    };
    if (auto err = addNamed(described->tools, snap->tools, snap->toolIndex, toolOwner, "tool")) {
      return unexpected(*err);
    }
    for (const auto& t : snap->tools) {
      if (t.contains("inputSchema"))
        snap->toolSchemas.emplace(t["name"].get<std::string>(), t["inputSchema"]);
      snap->toolAnnotations.emplace(t["name"].get<std::string>(), t.value("annotations", Json::object()));
    }
    if (auto err = addNamed(described->prompts, snap->prompts, snap->promptIndex, promptOwner, "prompt")) {
      return unexpected(*err);
    }
    for (const auto& r : described->resources) {
      if (!r.is_object() || !r.contains("uri") || !r["uri"].is_string()) continue;
      const std::string uri = r["uri"].get<std::string>();
      if (snap->resourceIndex.count(uri) != 0) {
        return unexpected("resource '" + uri + "' is offered by both connector '" +
                          snap->resourceIndex[uri].connectorId + "' and connector '" + instance.id + "'");
      }
      snap->resources.push_back(r);
      snap->resourceIndex.emplace(uri, Target{instance.connector, instance.id, uri});
    }
    for (const auto& t : described->resourceTemplates) {
      if (!t.is_object() || !t.contains("uriTemplate") || !t["uriTemplate"].is_string()) continue;
      snap->resourceTemplates.push_back(t);
      snap->templateIndex.emplace_back(
          t["uriTemplate"].get<std::string>(),
          Target{instance.connector, instance.id, t["uriTemplate"].get<std::string>()});
    }
  }
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

Expected<bool, std::string> Catalog::load() {
  auto built = build();
  if (!built) return unexpected(built.error());
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(built.value());
  return true;
}

void Catalog::refresh(protocol::ChangeKind kind) {
  std::unique_lock refreshLock(refreshMutex_);
  auto built = build();
  if (built) {
    std::lock_guard lock(mutex_);
    snapshot_ = std::move(built.value());
  } else {
    // Keep serving the previous catalog: a connector that starts colliding must not take
    // everyone else's tools away.
    log::error("catalog", "catalog refresh rejected; keeping the previous one", {{"error", built.error()}});
  }
  refreshLock.unlock();
  bus_->publish(kind);
}

std::shared_ptr<const Catalog::Snapshot> Catalog::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

Json Catalog::tools() const {
  return snapshot()->tools;
}
Json Catalog::prompts() const {
  return snapshot()->prompts;
}
Json Catalog::resources() const {
  return snapshot()->resources;
}
Json Catalog::resourceTemplates() const {
  return snapshot()->resourceTemplates;
}

std::optional<Catalog::Target> Catalog::findTool(std::string_view name) const {
  auto snap = snapshot();
  auto it = snap->toolIndex.find(name);
  if (it == snap->toolIndex.end()) return std::nullopt;
  return it->second;
}

Json Catalog::toolInputSchema(std::string_view name) const {
  auto snap = snapshot();
  auto it = snap->toolSchemas.find(name);
  return it == snap->toolSchemas.end() ? Json() : it->second;
}

Json Catalog::toolAnnotations(std::string_view name) const {
  auto snap = snapshot();
  auto it = snap->toolAnnotations.find(name);
  return it == snap->toolAnnotations.end() ? Json::object() : it->second;
}

std::optional<Catalog::Target> Catalog::findPrompt(std::string_view name) const {
  auto snap = snapshot();
  auto it = snap->promptIndex.find(name);
  if (it == snap->promptIndex.end()) return std::nullopt;
  return it->second;
}

std::optional<Catalog::Target> Catalog::findResource(std::string_view uri) const {
  auto snap = snapshot();
  if (auto it = snap->resourceIndex.find(uri); it != snap->resourceIndex.end()) return it->second;
  for (const auto& [tmpl, target] : snap->templateIndex) {
    if (uriMatchesTemplate(uri, tmpl)) return Target{target.connector, target.connectorId, std::string(uri)};
  }
  return std::nullopt;
}

std::optional<Catalog::Target> Catalog::findTemplate(std::string_view uriTemplate) const {
  auto snap = snapshot();
  for (const auto& [tmpl, target] : snap->templateIndex) {
    if (tmpl == uriTemplate) return target;
  }
  return std::nullopt;
}

std::vector<std::string> Catalog::connectorIds() const {
  std::vector<std::string> ids;
  for (const auto& i : instances_) ids.push_back(i.id);
  return ids;
}

std::optional<std::string> Catalog::unavailableReason(std::string_view exposedName) const {
  auto snap = snapshot();
  for (const auto& instance : instances_) {
    if (!instance.prefixed || !exposedName.starts_with(instance.id + separator_)) continue;
    auto it = snap->unavailableReasons.find(instance.id);
    if (it != snap->unavailableReasons.end()) return it->second;
  }
  return std::nullopt;
}

std::vector<std::string> Catalog::unavailableConnectors() const {
  return snapshot()->unavailable;
}

}  // namespace mcphost::connectors
