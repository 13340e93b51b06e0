#include "connectors/catalog.hpp"

#include <algorithm>
#include <map>
#include <set>

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
  std::map<std::string, std::string, std::less<>> regionDown;          // "id@region" -> why
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

std::string instanceKey(const ConnectorInstance& instance) {
  return instance.region.empty() ? instance.id : instance.id + "@" + instance.region;
}

std::string asciiLower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

// What an unrouted Target of a regional group carries, so that a code path which forgets
// route() fails closed instead of sending the call to whichever region was listed.
class UnroutedConnector final : public Connector {
 public:
  explicit UnroutedConnector(const std::string& id)
      : error_{protocol::errc::kInternalError,
               "connector '" + id + "' has per-region instances and this request was not routed to one",
               {{"connector", id}}} {}
  void attach(ConnectorEvents* /*events*/) override {}
  Expected<Descriptor, RpcError> describe() override { return unexpected(error_); }
  Outcome callTool(std::string_view, const Json&, CallContext&) override { return error_; }
  Outcome readResource(std::string_view, CallContext&) override { return error_; }
  Outcome getPrompt(std::string_view, const Json&, CallContext&) override { return error_; }
  Outcome complete(const Json&, const Json&, const Json&, CallContext&) override { return error_; }
  Outcome subscribe(std::string_view) override { return error_; }
  Outcome unsubscribe(std::string_view) override { return error_; }

 private:
  RpcError error_;
};

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
                 std::shared_ptr<protocol::ChangeBus> bus, std::string regionAttribute)
    : instances_(std::move(instances)),
      separator_(std::move(separator)),
      regionAttribute_(std::move(regionAttribute)),
      bus_(std::move(bus)),
      snapshot_(std::make_shared<Snapshot>()) {
  for (auto& instance : instances_) {
    events_.push_back(std::make_unique<Events>(*this));
    instance.connector->attach(events_.back().get());
  }
  // Group the regional instances by id. The configuration loader already refuses what is
  // checked here; an inconsistent set from elsewhere must still not route unpredictably.
  std::map<std::string, bool, std::less<>> regionalById;
  for (const auto& instance : instances_) {
    const bool regional = !instance.region.empty();
    if (auto [it, inserted] = regionalById.emplace(instance.id, regional);
        !inserted && it->second != regional) {
      groupError_ = "connector '" + instance.id + "' is configured both with and without a region";
    }
    if (!regional) continue;
    auto& group = groups_[instance.id];
    for (const auto* member : group.members) {
      if (member->region == instance.region) {
        groupError_ =
            "connector '" + instance.id + "' has two instances for region '" + instance.region + "'";
      }
    }
    if (group.members.empty()) {
      group.defaultRegion = instance.defaultRegion;
      group.unrouted = std::make_shared<UnroutedConnector>(instance.id);
    }
    group.members.push_back(&instance);
  }
}

Catalog::~Catalog() {
  for (auto& instance : instances_) instance.connector->attach(nullptr);
}

Expected<std::shared_ptr<const Catalog::Snapshot>, std::string> Catalog::build() const {
  auto snap = std::make_shared<Snapshot>();
  std::map<std::string, std::string> toolOwner;
  std::map<std::string, std::string> promptOwner;
  if (!groupError_.empty()) return unexpected(groupError_);
  std::set<std::string, std::less<>> groupsDone;
  for (const auto& instance : instances_) {
    // A regional group is described at its first instance: every region (to know which are
    // down), the items from the first region that answers.
    const Group* group = nullptr;
    if (!instance.region.empty()) {
      if (!groupsDone.insert(instance.id).second) continue;
      group = &groups_.find(instance.id)->second;
    }
    std::optional<Descriptor> described;
    std::string whyDown;
    for (const ConnectorInstance* member :
         group ? group->members : std::vector<const ConnectorInstance*>{&instance}) {
      auto answer = member->connector->describe();
      if (answer) {
        if (!described) described = std::move(answer.value());
        continue;
      }
      log::warn("catalog", "connector is unavailable; its items are left out",
                {{"connector", instanceKey(*member)}, {"error", answer.error().message}});
      if (group) {
        snap->regionDown[instanceKey(*member)] = answer.error().message;
        whyDown +=
            (whyDown.empty() ? "region " : "; region ") + member->region + ": " + answer.error().message;
      } else {
        whyDown = answer.error().message;
      }
    }
    if (!described) {
      snap->unavailable.push_back(instance.id);
      snap->unavailableReasons[instance.id] = whyDown;
      continue;
    }
    // Items of a regional group point at its refusing stand-in until route() picks a region.
    const Target base{group ? group->unrouted : instance.connector, instance.id, "", group != nullptr};
    auto targetFor = [&base](std::string local) {
      Target t = base;
      t.localName = std::move(local);
      return t;
    };
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
        index.emplace(name, targetFor(local));
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
      snap->resourceIndex.emplace(uri, targetFor(uri));
    }
    for (const auto& t : described->resourceTemplates) {
      if (!t.is_object() || !t.contains("uriTemplate") || !t["uriTemplate"].is_string()) continue;
      snap->resourceTemplates.push_back(t);
      snap->templateIndex.emplace_back(t["uriTemplate"].get<std::string>(),
                                       targetFor(t["uriTemplate"].get<std::string>()));
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
    if (uriMatchesTemplate(uri, tmpl)) {
      Target found = target;
      found.localName = std::string(uri);
      return found;
    }
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

Expected<Catalog::Target, protocol::RpcError> Catalog::route(const Target& target,
                                                             const Caller& caller) const {
  if (!target.regional) return target;
  const auto group = groups_.find(target.connectorId);
  if (group == groups_.end()) {
    return unexpected(protocol::RpcError{protocol::errc::kInternalError,
                                         "connector '" + target.connectorId + "' has no regional instances",
                                         {{"connector", target.connectorId}}});
  }
  std::string regions;
  for (const auto* member : group->second.members) regions += (regions.empty() ? "" : ", ") + member->region;
  const std::string head =
      "connector '" + target.connectorId + "' has instances for regions " + regions + "; ";
  auto refuse = [&](const std::string& why) {
    return unexpected(protocol::RpcError{
        kRegionRefused,
        "Forbidden: " + head + why,
        {{"connector", target.connectorId}, {"regions", regions}, {"attribute", regionAttribute_}}});
  };
  // The caller's region: a string, or a one-value list (LDAP returns multi-valued attributes
  // as lists); anything else is ambiguous and refused rather than guessed.
  std::string wanted;
  const Json& attributes = caller.attributes;
  if (const auto it = attributes.find(regionAttribute_); attributes.is_object() && it != attributes.end()) {
    const Json* value = &*it;
    if (value->is_array() && value->size() == 1) value = &(*value)[0];
    if (!value->is_string() || value->get<std::string>().empty()) {
      return refuse("your principal's '" + regionAttribute_ + "' attribute is not one region name");
    }
    wanted = asciiLower(value->get<std::string>());
  }
  const ConnectorInstance* chosen = nullptr;
  if (wanted.empty()) {
    if (group->second.defaultRegion.empty()) {
      return refuse("your principal has no '" + regionAttribute_ +
                    "' attribute and the connector has no default_region (set the attribute in the "
                    "identity provider, or give the connector a default_region)");
    }
    wanted = group->second.defaultRegion;
  }
  for (const auto* member : group->second.members) {
    if (member->region == wanted) chosen = member;
  }
  if (chosen == nullptr) {
    return refuse("your region '" + wanted +
                  "' has no instance (add one under the connector's regions, or "
                  "correct the principal's '" +
                  regionAttribute_ + "' attribute)");
  }
  const auto snap = snapshot();
  if (const auto down = snap->regionDown.find(instanceKey(*chosen)); down != snap->regionDown.end()) {
    return unexpected(protocol::RpcError{
        protocol::errc::kInternalError,
        "connector '" + target.connectorId + "' is unavailable in region '" + wanted + "': " + down->second +
            " (calls are never sent to another region)",
        {{"connector", target.connectorId}, {"region", wanted}, {"state", "unavailable"}}});
  }
  Target routed = target;
  routed.connector = chosen->connector;
  routed.region = chosen->region;
  return routed;
}

std::vector<std::string> Catalog::connectorIds() const {
  std::vector<std::string> ids;
  for (const auto& i : instances_) {
    if (std::find(ids.begin(), ids.end(), i.id) == ids.end()) ids.push_back(i.id);
  }
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

std::map<std::string, std::string, std::less<>> Catalog::unavailableRegions() const {
  return snapshot()->regionDown;
}

}  // namespace mcphost::connectors
