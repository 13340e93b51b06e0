#include "app/connector_factory.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/secret_reader.hpp"
#include "connectors/manifest.hpp"
#include "mcphost/connector.h"
#include "observe/log.hpp"
#include "sandbox/sandbox.hpp"

namespace mcphost::app {

namespace fs = std::filesystem;
using config::readSecret;
using connectors::Json;
using connectors::RpcError;

namespace {

std::string executableDir() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

Expected<std::string, std::string> findManifest(const config::Config& cfg,
                                                const config::ConnectorConfig& cc) {
  if (!cc.manifest.empty()) {
    fs::path p(cc.manifest);
    if (p.is_relative()) p = fs::path(cfg.path).parent_path() / p;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) return unexpected("manifest " + p.string() + " does not exist");
    return fs::absolute(p).lexically_normal().string();
  }
  std::vector<std::string> dirs = cfg.connectorPaths;
  if (dirs.empty()) dirs.push_back(defaultConnectorPath());
  std::string searched;
  for (const auto& dir : dirs) {
    fs::path p = fs::path(dir) / cc.connector / "connector.json";
    if (p.is_relative()) p = fs::path(cfg.path).parent_path() / p;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return fs::absolute(p).lexically_normal().string();
    searched += (searched.empty() ? "" : ", ") + p.string();
  }
  return unexpected("connector '" + cc.connector + "' is not installed (looked for " + searched +
                    "); install it, or set connector_paths or manifest");
}

Json sandboxFor(const connectors::ConnectorManifest& m, const config::ConnectorConfig& cc) {
  Json ro = Json::array();
  for (const auto& p : sandbox::defaultReadOnlyPaths()) ro.push_back(p);
  ro.push_back(fs::path(m.library).parent_path().string());
  for (const auto& p : m.readPaths) ro.push_back(p);
  Json rw = Json::array();
  for (const auto& p : sandbox::defaultReadWritePaths()) rw.push_back(p);
  for (const auto& p : m.writePaths) rw.push_back(p);
  Json s = {{"disabled", !cc.sandbox},
            {"readOnlyPaths", std::move(ro)},
            {"readWritePaths", std::move(rw)},
            {"network", m.network},
            {"allowProcesses", m.limits.maxProcesses > 0},
            {"maxProcesses", m.limits.maxProcesses},
            {"maxOpenFiles", m.limits.maxOpenFiles == 0 ? 256 : m.limits.maxOpenFiles},
            {"cpuSeconds", m.limits.cpuSeconds},
            {"memoryBytes", m.limits.memoryBytes},
            {"pidsMax", m.limits.maxProcesses + 64}};
#ifndef MCPHOST_SANITIZE
  // Sanitizer runtimes reserve terabytes of shadow memory; an address-space cap breaks them.
  s["addressSpaceBytes"] = m.limits.addressSpaceBytes;
#endif
  if (::geteuid() == 0) {
    s["runAsUid"] = 65534;  // nobody: a compromised connector holds no host privilege
    s["runAsGid"] = 65534;
  }
  return s;
}

void applyPolicy(connectors::SupervisorPolicy& p, const config::ConnectorConfig& cc) {
  p.workers = cc.workers;
  p.startTimeout = cc.startTimeout;
  p.callTimeout = cc.callTimeout;
  p.taskTimeout = cc.taskTimeout;
  p.cancelGrace = cc.cancelGrace;
  p.pingInterval = cc.pingInterval;
  p.backoffInitial = cc.backoff;
  p.backoffMax = cc.backoffMax;
  p.crashLoopCount = cc.crashLoopCount;
  p.crashLoopWindow = cc.crashLoopWindow;
  p.recycleAfterCalls = cc.recycleAfterCalls;
  p.recycleAfterIdle = cc.recycleAfterIdle;
}

Expected<std::shared_ptr<connectors::WorkerConnector>, std::string> makeNative(
    const config::Config& cfg, const config::ConnectorConfig& cc) {
  auto manifestPath = findManifest(cfg, cc);
  if (!manifestPath) return unexpected(manifestPath.error());
  auto manifest = connectors::loadManifest(*manifestPath);
  if (!manifest) return unexpected(manifest.error());
  if (auto ok = connectors::verifyLibrary(*manifest); !ok) return unexpected(ok.error());
  if (auto ok = connectors::checkAbi(*manifest, MCPH_ABI_MAJOR, MCPH_ABI_MINOR); !ok)
    return unexpected(ok.error());
  if (auto ok = connectors::validateConnectorConfig(*manifest, cc.settings, cc.id); !ok)
    return unexpected(ok.error());

  connectors::WorkerSpec spec;
  spec.connectorId = cc.id;
  spec.workerBinary = workerBinaryPath();
  spec.manifestName = manifest->name;
  spec.library = manifest->library;
  spec.sha256 = manifest->sha256;
  spec.config = cc.settings;
  for (const auto& secret : manifest->secrets) spec.declaredSecrets.push_back(secret.name);
  for (const auto& [name, source] : cc.secrets) {
    if (std::find(spec.declaredSecrets.begin(), spec.declaredSecrets.end(), name) ==
        spec.declaredSecrets.end()) {
      return unexpected("secret '" + name + "' is not declared by connector " + manifest->name +
                        " (declared: " +
                        [&] {
                          std::string all;
                          for (const auto& d : spec.declaredSecrets) all += (all.empty() ? "" : ", ") + d;
                          return all.empty() ? std::string("none") : all;
                        }() +
                        ")");
    }
    auto value = readSecret(name, source);
    if (!value) return unexpected(value.error());
    spec.secrets[name] = std::move(value.value());
  }
  const auto missing = connectors::missingRequiredSecrets(
      *manifest, [&](std::string_view name) { return spec.secrets.contains(std::string(name)); });
  if (!missing.empty()) {
    std::string names;
    for (const auto& n : missing) names += (names.empty() ? "" : ", ") + n;
    return unexpected("connector " + manifest->name + " requires the secret(s) " + names +
                      "; add them under secrets: with {env: VAR} or {file: PATH}");
  }
  spec.sandbox = sandboxFor(*manifest, cc);
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "MCPHOST_CONNECTOR=" + cc.id};
#ifdef MCPHOST_SANITIZE
  // LeakSanitizer stops the world with ptrace, which the sandbox forbids.
  spec.env.push_back("ASAN_OPTIONS=detect_leaks=0");
#endif
  if (!cc.sandbox) {
    log::warn("startup", "the sandbox is DISABLED for this connector (sandbox: false); use only to debug",
              {{"connector", cc.id}});
  }
  applyPolicy(spec.policy, cc);
  return connectors::WorkerConnector::create(std::move(spec));
}

// Stands in for an instance whose manifest, library or config failed validation: it offers
// nothing and says why on every request.
class UnavailableConnector final : public connectors::Connector {
 public:
  UnavailableConnector(const std::string& id, const std::string& why)
      : error_{protocol::errc::kInternalError,
               "connector '" + id + "' is unavailable: " + why,
               {{"connector", id}, {"state", "invalid"}}} {}
  void attach(connectors::ConnectorEvents* /*events*/) override {}
  Expected<connectors::Descriptor, RpcError> describe() override { return unexpected(error_); }
  connectors::Outcome callTool(std::string_view, const Json&, connectors::CallContext&) override {
    return error_;
  }
  connectors::Outcome readResource(std::string_view, connectors::CallContext&) override { return error_; }
  connectors::Outcome getPrompt(std::string_view, const Json&, connectors::CallContext&) override {
    return error_;
  }
  connectors::Outcome complete(const Json&, const Json&, const Json&, connectors::CallContext&) override {
    return error_;
  }
  connectors::Outcome subscribe(std::string_view) override { return error_; }
  connectors::Outcome unsubscribe(std::string_view) override { return error_; }

 private:
  RpcError error_;
};

// An upstream Streamable HTTP MCP server. Only the configured headers go upstream (never the
// client's own credentials); a "secret:NAME" value is read from the instance's secrets.
Expected<std::shared_ptr<connectors::RemoteConnector>, std::string> makeRemote(
    const config::Config& cfg, const config::ConnectorConfig& cc) {
  if (auto endpoint = connectors::remote::parseEndpoint(cc.url); !endpoint)
    return unexpected(endpoint.error());
  connectors::RemoteSpec spec;
  spec.connectorId = cc.id;
  spec.url = cc.url;
  for (const auto& [name, value] : cc.headers) {
    if (!value.starts_with("secret:")) {
      spec.headers[name] = value;
      continue;
    }
    const std::string secret = value.substr(7);
    const auto source = cc.secrets.find(secret);
    if (source == cc.secrets.end()) {
      std::string problem = "header '";
      problem.append(name).append("' takes secret '").append(secret);
      problem += "', which is not listed under secrets: (add {env: VAR} or {file: PATH})";
      return unexpected(std::move(problem));
    }
    auto resolved = readSecret(secret, source->second);
    if (!resolved) return unexpected(resolved.error());
    spec.headers[name] = std::move(resolved.value());
  }
  spec.callTimeout = cc.callTimeout;
  spec.startTimeout = cc.startTimeout;
  spec.backoffInitial = cc.backoff;
  spec.backoffMax = std::min<std::chrono::milliseconds>(cc.backoffMax, std::chrono::seconds(30));
  spec.maxJsonDepth = cfg.server.maxJsonDepth;
  return connectors::RemoteConnector::create(std::move(spec));
}

// An external MCP server (stdio transport) under the same supervisor and sandbox as a native
// connector. It may start processes (npx, node, python launchers do) but sees only the system
// folders, its own program's folder and the paths the operator lists.
Expected<std::shared_ptr<connectors::WorkerConnector>, std::string> makeStdio(
    const config::Config& cfg, const config::ConnectorConfig& cc) {
  connectors::WorkerSpec spec;
  spec.connectorId = cc.id;
  spec.workerBinary = workerBinaryPath();
  spec.mcpStdio = true;
  spec.command = cc.command;
  spec.args = cc.args;
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent"};
  for (const auto& [k, v] : cc.env) {
    // "secret:NAME": the value comes from the instance's secrets, never from the config file.
    std::string value = v;
    if (v.starts_with("secret:")) {
      const std::string secret = v.substr(7);
      const auto source = cc.secrets.find(secret);
      if (source == cc.secrets.end()) {
        std::string problem = "env ";
        problem.append(k).append(" takes secret '").append(secret);
        problem += "', which is not listed under secrets: (add {env: VAR} or {file: PATH})";
        return unexpected(std::move(problem));
      }
      auto resolved = readSecret(secret, source->second);
      if (!resolved) return unexpected(resolved.error());
      value = std::move(resolved.value());
    }
    spec.env.push_back(std::string(k).append("=").append(value));
  }
  if (!cc.sandbox) {
    log::warn("startup", "the sandbox is DISABLED for this connector (sandbox: false); use only to debug",
              {{"connector", cc.id}});
  }
#ifdef MCPHOST_SANITIZE
  spec.env.push_back("ASAN_OPTIONS=detect_leaks=0");
#endif
  Json ro = Json::array();
  for (const auto& p : sandbox::defaultReadOnlyPaths()) ro.push_back(p);
  for (const char* p : {"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/opt", "/dev/random"})
    ro.push_back(p);
  auto resolve = [&](const std::string& path) {
    fs::path p(path);
    if (p.is_relative()) p = fs::absolute(fs::path(cfg.path).parent_path() / p);
    return p.lexically_normal().string();
  };
  if (cc.command.find('/') != std::string::npos)
    ro.push_back(fs::path(resolve(cc.command)).parent_path().string());
  for (const auto& p : cc.readPaths) ro.push_back(resolve(p));
  Json rw = Json::array();
  for (const auto& p : sandbox::defaultReadWritePaths()) rw.push_back(p);
  for (const auto& p : cc.writePaths) rw.push_back(resolve(p));
  spec.sandbox = {
      {"disabled", !cc.sandbox}, {"readOnlyPaths", std::move(ro)}, {"readWritePaths", std::move(rw)},
      {"network", cc.network},   {"allowProcesses", true},         {"maxOpenFiles", 1024},
      {"pidsMax", 256}};
  if (::geteuid() == 0) {
    spec.sandbox["runAsUid"] = 65534;
    spec.sandbox["runAsGid"] = 65534;
  }
  applyPolicy(spec.policy, cc);
  return connectors::WorkerConnector::create(std::move(spec));
}

// One region's instance of a connector with `regions:`: the base entry with the region's
// overrides applied, under the internal id "<id>@<region>" that its workers, logs and problems
// carry (the catalog still exposes it as <id>).
config::ConnectorConfig regionInstance(const config::ConnectorConfig& base,
                                       const config::RegionConfig& region) {
  config::ConnectorConfig cc = base;
  cc.id = base.id + "@" + region.name;
  cc.region = region.name;
  cc.regions.clear();
  cc.line = region.line;
  for (const auto& [key, value] : region.settings.items()) cc.settings[key] = value;  // shallow merge
  for (const auto& [name, source] : region.secrets) cc.secrets.insert_or_assign(name, source);
  if (!region.url.empty()) cc.url = region.url;
  for (const auto& [name, value] : region.headers) cc.headers.insert_or_assign(name, value);
  if (!region.command.empty()) cc.command = region.command;
  if (region.args) cc.args = *region.args;
  for (const auto& [name, value] : region.env) cc.env.insert_or_assign(name, value);
  cc.tags.push_back(config::regionTag(region.name));
  return cc;
}

// Sets up one instance (cc.id is the internal id) and adds it to the set as `slot` (the
// catalog's view: exposed id, prefix, routing region); an instance that cannot be set up is
// added as unavailable, so that it explains itself.
void addInstance(ConnectorSet& set, const config::Config& cfg, const config::ConnectorConfig& cc,
                 connectors::ConnectorInstance slot) {
  auto add = [&](std::shared_ptr<connectors::Connector> connector) {
    slot.connector = std::move(connector);
    set.instances.push_back(std::move(slot));
  };
  auto failed = [&](const std::string& why) {
    const std::string problem =
        cfg.path + ":" + std::to_string(cc.line) + ": connector '" + cc.id + "': " + why;
    log::error("startup", "connector instance cannot be started; serving without it",
               {{"connector", cc.id}, {"error", problem}});
    set.problems.push_back(problem);
    set.invalid[cc.id] = why;
    add(std::make_shared<UnavailableConnector>(cc.id, why));
  };
  if (cc.type == "remote") {
    auto remote = makeRemote(cfg, cc);
    if (!remote) {
      failed(remote.error());
      return;
    }
    add(*remote);
    set.remotes.emplace_back(cc.id, *remote);
    return;
  }
  auto worker = cc.type == "stdio" ? makeStdio(cfg, cc) : makeNative(cfg, cc);
  if (!worker) {
    failed(worker.error());
    return;
  }
  add(*worker);
  set.workers.emplace_back(cc.id, *worker);
}

}  // namespace

std::string defaultConnectorPath() {
  return (fs::path(executableDir()).parent_path() / "lib" / "mcphost" / "connectors").string();
}

std::string workerBinaryPath() {
  return (fs::path(executableDir()) / "mcphost-worker").string();
}

ConnectorSet makeConnectors(const config::Config& cfg) {
  ConnectorSet set;
  for (const auto& cc : cfg.connectors) {
    if (cc.regions.empty()) {
      // A one-region instance (`region:`) is only tagged, not routed: no catalog region.
      addInstance(set, cfg, cc, {cc.id, cc.prefix, nullptr});
      continue;
    }
    for (const auto& region : cc.regions) {
      addInstance(set, cfg, regionInstance(cc, region),
                  {cc.id, cc.prefix, nullptr, region.name, cc.defaultRegion});
    }
  }
  return set;
}

}  // namespace mcphost::app
