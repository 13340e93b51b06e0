#include "config/config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "config/data_protection_config.hpp"
#include "config/security_config.hpp"
#include "config/yaml_reader.hpp"

namespace mcphost::config {

using detail::readDataProtection;
using detail::Reader;
using detail::readSecurity;
using detail::yamlToJson;

Expected<std::pair<std::string, std::uint16_t>, std::string> parseListen(const std::string& value) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return unexpected("'" + value + "' is not HOST:PORT (e.g. 127.0.0.1:8765)");
  }
  in_addr address{};
  if (::inet_pton(AF_INET, value.substr(0, colon).c_str(), &address) != 1) {
    return unexpected("'" + value.substr(0, colon) +
                      "' is not an IPv4 address (use 127.0.0.1, or 0.0.0.0 for all)");
  }
  unsigned port = 0;
  const std::string portText = value.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || ptr != portText.data() + portText.size() || port > 65535) {
    return unexpected("'" + portText + "' is not a port number (0-65535)");
  }
  return std::make_pair(value.substr(0, colon), static_cast<std::uint16_t>(port));
}

Expected<std::chrono::milliseconds, std::string> parseDuration(const std::string& value) {
  static const std::regex kDuration("^([0-9]{1,9})(ms|s|m|h|d)$");
  std::smatch m;
  if (!std::regex_match(value, m, kDuration)) {
    return unexpected("'" + value + "' is not a duration (use e.g. 500ms, 10s, 5m, 2h, 90d)");
  }
  const long long n = std::stoll(m[1].str());
  const std::string unit = m[2].str();
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::milliseconds(n * 1000);
  if (unit == "m") return std::chrono::milliseconds(n * 60 * 1000);
  if (unit == "h") return std::chrono::milliseconds(n * 3600 * 1000);
  return std::chrono::milliseconds(n * 24 * 3600 * 1000);
}

Expected<Config, std::string> parseConfig(const std::string& text, const std::string& sourceName) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return unexpected(sourceName + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  Config cfg;
  cfg.path = sourceName;
  Reader r(sourceName);
  if (!root || root.IsNull()) return unexpected(sourceName + ": the configuration is empty");
  r.allowKeys(root, "",
              {"name", "server", "logging", "catalog", "connectors", "connector_paths", "auth", "policy",
               "rate_limits", "state_dir", "guard", "data_protection", "audit", "residency"});
  r.readStrings(root, "", "connector_paths", cfg.connectorPaths);
  r.read(root, "", "name", cfg.name);
  if (const YAML::Node server = root["server"]; server && !r.failed()) {
    r.allowKeys(server, "server",
                {"listen", "endpoint", "allowed_hosts", "allowed_origins", "dns_rebinding_protection",
                 "max_body_bytes", "max_json_depth", "session_idle_timeout", "max_sessions", "worker_threads",
                 "request_read_timeout", "idle_connection_timeout", "max_connections",
                 "client_request_timeout", "resumable_responses", "tls"});
    if (const YAML::Node listen = server["listen"]; listen && !r.failed()) {
      auto hp = parseListen(listen.IsScalar() ? listen.Scalar() : "");
      if (!hp) {
        r.fail(listen, "server.listen", hp.error());
      } else {
        cfg.server.host = hp->first;
        cfg.server.port = hp->second;
      }
    }
    r.read(server, "server", "endpoint", cfg.server.endpoint);
    r.readStrings(server, "server", "allowed_hosts", cfg.server.allowedHosts);
    r.readStrings(server, "server", "allowed_origins", cfg.server.allowedOrigins);
    r.read(server, "server", "dns_rebinding_protection", cfg.server.dnsRebindingProtection);
    r.read(server, "server", "max_body_bytes", cfg.server.maxBodyBytes);
    r.read(server, "server", "max_json_depth", cfg.server.maxJsonDepth);
    r.readDuration(server, "server", "session_idle_timeout", cfg.server.sessionIdleTimeout);
    r.read(server, "server", "max_sessions", cfg.server.maxSessions);
    r.read(server, "server", "worker_threads", cfg.server.workerThreads);
    r.readDuration(server, "server", "request_read_timeout", cfg.server.requestReadTimeout);
    r.readDuration(server, "server", "idle_connection_timeout", cfg.server.idleConnectionTimeout);
    r.read(server, "server", "max_connections", cfg.server.maxConnections);
    r.readDuration(server, "server", "client_request_timeout", cfg.server.clientRequestTimeout);
    r.read(server, "server", "resumable_responses", cfg.server.resumableResponses);
    if (const YAML::Node tls = server["tls"]; tls && !r.failed()) {
      r.allowKeys(
          tls, "server.tls",
          {"certificate_file", "private_key_file", "min_version", "client_ca_file", "client_certificate"});
      r.read(tls, "server.tls", "client_ca_file", cfg.server.tlsClientCaFile);
      std::string clientCertificate = "optional";
      r.read(tls, "server.tls", "client_certificate", clientCertificate);
      if (!r.failed() && clientCertificate != "optional" && clientCertificate != "required") {
        r.fail(tls["client_certificate"], "server.tls.client_certificate", "must be optional or required");
      }
      cfg.server.tlsClientCertRequired = clientCertificate == "required";
      r.read(tls, "server.tls", "certificate_file", cfg.server.tlsCertificateFile);
      r.read(tls, "server.tls", "private_key_file", cfg.server.tlsPrivateKeyFile);
      r.read(tls, "server.tls", "min_version", cfg.server.tlsMinVersion);
      if (!r.failed() && (cfg.server.tlsCertificateFile.empty() || cfg.server.tlsPrivateKeyFile.empty())) {
        r.fail(tls, "server.tls", "set both certificate_file and private_key_file (PEM)");
      }
      if (!r.failed() && cfg.server.tlsMinVersion != "1.2" && cfg.server.tlsMinVersion != "1.3") {
        r.fail(tls["min_version"], "server.tls.min_version", "must be \"1.2\" or \"1.3\"");
      }
    }
    if (!r.failed() && (cfg.server.endpoint.empty() || cfg.server.endpoint.front() != '/')) {
      r.fail(server["endpoint"], "server.endpoint", "must start with '/'");
    }
    if (!r.failed() && (cfg.server.workerThreads == 0 || cfg.server.workerThreads > 1024)) {
      r.fail(server["worker_threads"], "server.worker_threads", "must be between 1 and 1024");
    }
    if (!r.failed() && cfg.server.maxSessions == 0) {
      r.fail(server["max_sessions"], "server.max_sessions", "must be at least 1");
    }
    if (!r.failed() && cfg.server.maxConnections < 16) {
      r.fail(server["max_connections"], "server.max_connections", "must be at least 16");
    }
    if (!r.failed() && cfg.server.maxBodyBytes < 1024) {
      r.fail(server["max_body_bytes"], "server.max_body_bytes", "must be at least 1024");
    }
    if (!r.failed() && (cfg.server.maxJsonDepth < 2 || cfg.server.maxJsonDepth > 1000)) {
      r.fail(server["max_json_depth"], "server.max_json_depth", "must be between 2 and 1000");
    }
  }
  if (const YAML::Node logging = root["logging"]; logging && !r.failed()) {
    r.allowKeys(logging, "logging", {"level", "access_log"});
    r.read(logging, "logging", "level", cfg.logLevel);
    r.read(logging, "logging", "access_log", cfg.accessLog);
    if (!r.failed() && cfg.logLevel != "debug" && cfg.logLevel != "info" && cfg.logLevel != "warn" &&
        cfg.logLevel != "error") {
      r.fail(logging["level"], "logging.level", "must be debug, info, warn or error");
    }
  }
  if (const YAML::Node catalog = root["catalog"]; catalog && !r.failed()) {
    r.allowKeys(catalog, "catalog", {"separator", "page_size"});
    r.read(catalog, "catalog", "separator", cfg.separator);
    r.read(catalog, "catalog", "page_size", cfg.pageSize);
    static const std::regex kSeparator("^[A-Za-z0-9_.-]{1,4}$");
    if (!r.failed() && !std::regex_match(cfg.separator, kSeparator)) {
      r.fail(catalog["separator"], "catalog.separator", "must be 1-4 characters from [A-Za-z0-9_.-]");
    }
    if (!r.failed() && cfg.pageSize == 0)
      r.fail(catalog["page_size"], "catalog.page_size", "must be at least 1");
  }
  const YAML::Node connectors = root["connectors"];
  if (!r.failed() && (!connectors || !connectors.IsSequence() || connectors.size() == 0)) {
    r.fail(connectors ? connectors : root, "connectors", "list at least one connector instance");
  }
  std::set<std::string> ids;
  static const std::regex kId("^[A-Za-z0-9][A-Za-z0-9-]{0,31}$");
  for (std::size_t i = 0; !r.failed() && i < connectors.size(); ++i) {
    const YAML::Node c = connectors[i];
    const std::string path = "connectors[" + std::to_string(i) + "]";
    r.allowKeys(c, path, {"id",         "type",           "connector", "manifest", "prefix",
                          "config",     "secrets",        "workers",   "timeouts", "restart",
                          "recycle",    "sandbox",        "command",   "args",     "env",
                          "read_paths", "write_paths",    "network",   "url",      "headers",
                          "tags",       "token_exchange", "region",    "regions",  "default_region"});
    ConnectorConfig cc;
    cc.line = c.Mark().line + 1;
    auto isHttpUrl = [](const std::string& url) {
      return url.starts_with("http://") || url.starts_with("https://");
    };
    r.read(c, path, "id", cc.id);
    r.readStrings(c, path, "tags", cc.tags);
    if (const YAML::Node te = c["token_exchange"]; te && !r.failed()) {
      r.allowKeys(te, path + ".token_exchange", {"audience"});
      r.read(te, path + ".token_exchange", "audience", cc.tokenExchangeAudience);
      if (!r.failed() && cc.tokenExchangeAudience.empty())
        r.fail(te, path + ".token_exchange.audience", "required: the backend the exchanged token is for");
    }
    r.read(c, path, "type", cc.type);
    r.read(c, path, "connector", cc.connector);
    r.read(c, path, "manifest", cc.manifest);
    r.read(c, path, "prefix", cc.prefix);
    r.read(c, path, "workers", cc.workers);
    r.read(c, path, "sandbox", cc.sandbox);
    r.read(c, path, "command", cc.command);
    r.readStrings(c, path, "args", cc.args);
    r.readStrings(c, path, "read_paths", cc.readPaths);
    r.readStrings(c, path, "write_paths", cc.writePaths);
    r.read(c, path, "network", cc.network);
    r.read(c, path, "url", cc.url);
    r.readStringMap(c, path, "env", cc.env);
    r.readStringMap(c, path, "headers", cc.headers);
    if (const YAML::Node settings = c["config"]; settings && !r.failed()) {
      if (!settings.IsMap()) {
        r.fail(settings, path + ".config", "expected a mapping (the connector's settings)");
      } else {
        cc.settings = yamlToJson(settings);
      }
    }
    if (const YAML::Node secrets = c["secrets"]; secrets && !r.failed() && !secrets.IsMap()) {
      r.fail(secrets, path + ".secrets", "expected a mapping of secret name to {env: VAR} or {file: PATH}");
    }
    if (const YAML::Node timeouts = c["timeouts"]; timeouts && !r.failed()) {
      const std::string tp = path + ".timeouts";
      r.allowKeys(timeouts, tp, {"start", "call", "task", "cancel_grace", "ping"});
      r.readDuration(timeouts, tp, "start", cc.startTimeout);
      r.readDuration(timeouts, tp, "call", cc.callTimeout);
      r.readDuration(timeouts, tp, "task", cc.taskTimeout);
      r.readDuration(timeouts, tp, "cancel_grace", cc.cancelGrace);
      r.readDuration(timeouts, tp, "ping", cc.pingInterval);
    }
    if (const YAML::Node restart = c["restart"]; restart && !r.failed()) {
      const std::string rp = path + ".restart";
      r.allowKeys(restart, rp, {"backoff", "backoff_max", "crash_loop_count", "crash_loop_window"});
      r.readDuration(restart, rp, "backoff", cc.backoff);
      r.readDuration(restart, rp, "backoff_max", cc.backoffMax);
      r.read(restart, rp, "crash_loop_count", cc.crashLoopCount);
      r.readDuration(restart, rp, "crash_loop_window", cc.crashLoopWindow);
    }
    if (const YAML::Node recycle = c["recycle"]; recycle && !r.failed()) {
      const std::string rp = path + ".recycle";
      r.allowKeys(recycle, rp, {"after_calls", "after_idle"});
      r.read(recycle, rp, "after_calls", cc.recycleAfterCalls);
      r.readDuration(recycle, rp, "after_idle", cc.recycleAfterIdle);
    }
    if (r.failed()) break;
    if (!std::regex_match(cc.id, kId)) {
      r.fail(c["id"] ? c["id"] : c, path + ".id",
             "'" + cc.id + "' must be 1-32 letters, digits or '-' (it prefixes tool names)");
    } else if (!ids.insert(cc.id).second) {
      r.fail(c["id"], path + ".id", "duplicate connector id '" + cc.id + "'");
    } else if (cc.type == "builtin:conformance") {
      r.fail(c["type"], path + ".type",
             "the built-in conformance connector is now an SDK connector: use `connector: conformance`");
    } else if (cc.type != "native" && cc.type != "stdio" && cc.type != "remote") {
      r.fail(c["type"], path + ".type",
             "unknown connector type '" + cc.type + "' (available: native, stdio, remote)");
    } else if (cc.type == "native" && cc.connector.empty() == cc.manifest.empty()) {
      r.fail(c, path,
             "set exactly one of `connector` (an installed connector's name) or `manifest` (a path)");
    } else if (cc.type == "stdio" && cc.command.empty() && !c["regions"]) {
      r.fail(c, path, "a stdio connector needs `command` (the MCP server program) and optionally `args`");
    } else if (cc.type == "stdio" && cc.network != "none" && cc.network != "host") {
      r.fail(c["network"], path + ".network", "must be \"none\" (a private network namespace) or \"host\"");
    } else if (cc.type == "remote" && !isHttpUrl(cc.url) && !(c["regions"] && cc.url.empty())) {
      r.fail(c["url"] ? c["url"] : c, path + ".url",
             "a remote connector needs `url`: http(s)://host:port/path");
    } else if (cc.type != "native" && !(cc.connector.empty() && cc.manifest.empty())) {
      r.fail(c, path, "`connector` and `manifest` are for native connectors only");
    } else if (cc.type != "native" && c["config"]) {
      r.fail(c["config"], path + ".config",
             "`config` is for native connectors (checked against their manifest); pass settings to a " +
                 std::string(cc.type == "stdio" ? "stdio server in args or env" : "remote server upstream"));
    } else if (cc.type != "stdio" && (c["command"] || c["args"] || c["env"])) {
      r.fail(c, path, "`command`, `args` and `env` are for stdio connectors only");
    } else if (cc.workers == 0 || cc.workers > 64) {
      r.fail(c["workers"], path + ".workers", "must be between 1 and 64");
    } else if (cc.crashLoopCount < 1) {
      r.fail(c["restart"], path + ".restart.crash_loop_count", "must be at least 1");
    }
    // Secret sources, of the instance and of each of its regions.
    auto readSecrets = [&](const YAML::Node& secrets, const std::string& key,
                           std::map<std::string, SecretSource>& out) {
      if (!secrets || r.failed()) return;
      if (!secrets.IsMap()) {
        r.fail(secrets, key, "expected a mapping of secret name to {env: VAR} or {file: PATH}");
        return;
      }
      for (const auto& kv : secrets) {
        const std::string name = kv.first.as<std::string>();
        const std::string sp = std::string(key).append(".").append(name);
        const YAML::Node source = kv.second;
        r.allowKeys(source, sp, {"env", "file"});
        SecretSource src;
        r.read(source, sp, "env", src.env);
        r.read(source, sp, "file", src.file);
        if (!r.failed() && src.env.empty() == src.file.empty()) {
          r.fail(source, sp,
                 "set exactly one of `env` (a variable name) or `file` (a path); never the value itself");
        }
        if (r.failed()) break;
        out.emplace(name, src);
      }
    };
    readSecrets(c["secrets"], path + ".secrets", cc.secrets);
    // Data residency: `region` tags a one-region instance; `regions` makes per-region instances
    // whose overrides are checked here against the instance's type.
    static const std::regex kRegion("^[a-z0-9-]{1,32}$");
    auto checkRegionName = [&](const YAML::Node& node, const std::string& key, const std::string& name) {
      if (!r.failed() && !std::regex_match(name, kRegion))
        r.fail(node, key, "'" + name + "' must be 1-32 lowercase letters, digits or '-'");
    };
    r.read(c, path, "region", cc.region);
    r.read(c, path, "default_region", cc.defaultRegion);
    for (const auto& tag : cc.tags) {
      if (!r.failed() && tag.starts_with("region:"))
        r.fail(c["tags"], path + ".tags",
               "'" + tag + "': region tags come from `region` or `regions`; set those instead");
    }
    if (const YAML::Node regions = c["regions"]; c["region"] && !r.failed()) {
      checkRegionName(c["region"], path + ".region", cc.region);
      if (regions) {
        r.fail(regions, path,
               "set either `region` (the one region of this instance) or `regions` (per-region "
               "instances), not both");
      }
      cc.tags.push_back(regionTag(cc.region));
    } else if (regions && !r.failed()) {
      const std::string rsp = path + ".regions";
      std::set<std::string> allowed = {"secrets"};
      if (cc.type == "native") allowed.insert("config");
      if (cc.type == "remote") allowed.insert({"url", "headers"});
      if (cc.type == "stdio") allowed.insert({"command", "args", "env"});
      if (!regions.IsMap() || regions.size() == 0)
        r.fail(regions, rsp, "expected a mapping of region name to its overrides (e.g. eu: {}, us: {})");
      for (auto it = regions.begin(); !r.failed() && it != regions.end(); ++it) {
        RegionConfig rc;
        rc.name = it->first.as<std::string>();
        rc.line = it->first.Mark().line + 1;
        const std::string rp = std::string(rsp).append(".").append(rc.name);
        checkRegionName(it->first, rp, rc.name);
        for (const auto& other : cc.regions) {
          if (!r.failed() && other.name == rc.name) r.fail(it->first, rp, "duplicate region");
        }
        const YAML::Node o = it->second;
        if (!o.IsNull()) r.allowKeys(o, rp, allowed);
        if (r.failed()) break;
        if (const YAML::Node settings = o["config"]; settings && !r.failed()) {
          if (settings.IsMap()) {
            rc.settings = yamlToJson(settings);
          } else {
            r.fail(settings, rp + ".config", "expected a mapping (merged over the instance's `config`)");
          }
        }
        r.read(o, rp, "url", rc.url);
        r.readStringMap(o, rp, "headers", rc.headers);
        r.read(o, rp, "command", rc.command);
        if (o["args"]) r.readStrings(o, rp, "args", rc.args.emplace());
        r.readStringMap(o, rp, "env", rc.env);
        readSecrets(o["secrets"], rp + ".secrets", rc.secrets);
        if (!r.failed() && cc.type == "remote" && !isHttpUrl(rc.url.empty() ? cc.url : rc.url)) {
          r.fail(o["url"] ? o["url"] : it->first, rp + ".url",
                 "needs an http(s)://host:port/path (here, or `url` on the connector for all regions)");
        }
        if (!r.failed() && cc.type == "stdio" && rc.command.empty() && cc.command.empty()) {
          r.fail(it->first, rp + ".command",
                 "a stdio connector needs `command` (here, or on the connector for all regions)");
        }
        cc.regions.push_back(std::move(rc));
      }
      bool defaultFound = false;
      std::string names;
      for (const auto& rc : cc.regions) {
        defaultFound = defaultFound || rc.name == cc.defaultRegion;
        names += (names.empty() ? "" : ", ") + rc.name;
      }
      if (!r.failed() && !cc.defaultRegion.empty() && !defaultFound) {
        r.fail(c["default_region"], path + ".default_region",
               "'" + cc.defaultRegion + "' is not one of regions (" + names + ")");
      }
    }
    if (!r.failed() && c["default_region"] && cc.regions.empty()) {
      r.fail(c["default_region"], path + ".default_region",
             "is only for connectors with `regions` (per-region instances)");
    }
    if (r.failed()) break;
    cfg.connectors.push_back(cc);
  }
  readSecurity(r, root, cfg);
  readDataProtection(r, root, cfg);
  if (!r.failed() && !cfg.auth.mtlsRules.empty() && cfg.server.tlsCertificateFile.empty()) {
    r.fail(root["auth"], "auth.mtls",
           "needs server.tls (certificate_file, private_key_file, client_ca_file)");
  }
  if (r.failed()) return unexpected(r.error());
  return cfg;
}

Expected<Config, std::string> loadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return unexpected(path + ": cannot open the configuration file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parseConfig(buffer.str(), path);
}

}  // namespace mcphost::config
