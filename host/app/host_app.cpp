#include "app/host_app.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>

#include "app/connector_factory.hpp"
#include "app/data_protection_setup.hpp"
#include "app/security_setup.hpp"
#include "connectors/catalog.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "protocol/mcp_router.hpp"
#include "transport/http_server.hpp"
#include "transport/stdio_transport.hpp"
#include "transport/streamable_http.hpp"

#ifndef MCPHOST_VERSION
#define MCPHOST_VERSION "0.0.0"
#endif

namespace mcphost::app {

namespace {

transport::HttpServer* gServer = nullptr;

extern "C" void onStopSignal(int /*signal*/) {
  if (gServer != nullptr) gServer->stop();
}

// Long-lived SSE streams and idle sessions each hold a descriptor; the default soft limit of
// 1024 would cap the host far below what the reactor can carry.
void raiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

Expected<bool, std::string> checkDeployment(const config::Config& cfg) {
  if (auto security = buildSecurity(cfg); !security) return unexpected(security.error());
  // Detectors, rules and keys; the audit log itself is not opened (check-config writes nothing).
  config::Config withoutAudit = cfg;
  withoutAudit.audit.enabled = false;
  if (auto guards = buildDataGuards(withoutAudit); !guards) return unexpected(guards.error());
  auto bus = std::make_shared<protocol::ChangeBus>();
  ConnectorSet set = makeConnectors(cfg);
  if (!set.problems.empty()) return unexpected(set.problems.front());
  connectors::Catalog catalog(set.instances, cfg.separator, bus, cfg.residencyAttribute);
  auto loaded = catalog.load();
  if (!loaded) return unexpected(cfg.path + ": " + loaded.error());
  for (const auto& [id, worker] : set.workers) {
    const auto status = worker->status();
    if (status.state != "ready") {
      return unexpected(cfg.path + ": connector '" + id + "' did not start: " + status.lastError);
    }
  }
  if (!cfg.server.tlsCertificateFile.empty()) {
    auto tls = transport::TlsContext::create({cfg.server.tlsCertificateFile, cfg.server.tlsPrivateKeyFile,
                                              cfg.server.tlsMinVersion, cfg.server.tlsClientCaFile,
                                              cfg.server.tlsClientCertRequired});
    if (!tls) return unexpected(cfg.path + ": " + tls.error());
  }
  return true;
}

int serve(ServeOptions options) {
  const config::Config& cfg = options.config;
  log::Level level = log::Level::kInfo;
  log::parseLevel(cfg.logLevel, level);
  log::setLevel(level);
  raiseFileLimit();
  std::signal(SIGPIPE, SIG_IGN);

  // Security first: a host that cannot authenticate or decide does not start (fail closed).
  auto security = buildSecurity(cfg);
  if (!security) {
    log::error("startup", "the security configuration is invalid", {{"error", security.error()}});
    std::cerr << "mcphost: " << security.error() << "\n";
    return 2;
  }
  for (const auto& problem : security->auth->warmUp()) {
    log::warn("startup", "identity provider not reachable yet; its callers are refused until it answers",
              {{"problem", problem}});
  }
  if (cfg.auth.ldap.enabled && cfg.auth.ldap.url.rfind("ldap://", 0) == 0 && !cfg.auth.ldap.startTls) {
    log::warn("startup", "directory passwords travel in clear text: use ldaps:// or start_tls: true",
              {{"url", cfg.auth.ldap.url}});
  }
  // SIGHUP never ends the host (systemctl reload); without a policy there is nothing to re-read.
  installReloadSignal();
  if (security->policy) {
    security->watcher = std::make_unique<PolicyWatcher>(security->policy, cfg.policyWatch);
    log::info("startup", "policy in force",
              {{"file", cfg.policyFile}, {"rules", security->policy->current()->ruleCount()}});
  }

  auto bus = std::make_shared<protocol::ChangeBus>();
  ConnectorSet set = makeConnectors(cfg);
  // Workers stop before the catalog and the router they serve go away (declared after them).
  struct StopWorkers {
    ConnectorSet& set;
    ~StopWorkers() {
      observe::Metrics::instance().setConnectorStatus(nullptr);
      for (auto& [id, worker] : set.workers) worker->shutdown();
      for (auto& [id, remote] : set.remotes) remote->shutdown();
    }
  };
  connectors::Catalog catalog(set.instances, cfg.separator, bus, cfg.residencyAttribute);
  StopWorkers stopWorkers{set};
  observe::Metrics::instance().setConnectorStatus([&set] {
    std::vector<observe::ConnectorHealth> out;
    for (const auto& [id, worker] : set.workers) {
      const auto s = worker->status();
      out.push_back({id, s.state, s.readyWorkers, s.restarts, s.crashes});
    }
    for (const auto& [id, remote] : set.remotes) {
      const auto s = remote->status();
      out.push_back({id, s.state, s.state == "ready" ? std::size_t{1} : std::size_t{0}, 0, 0});
    }
    return out;
  });
  if (auto loaded = catalog.load(); !loaded) {
    log::error("startup", "the connector catalog is invalid", {{"error", loaded.error()}});
    std::cerr << "mcphost: " << cfg.path << ": " << loaded.error() << "\n";
    return 2;
  }
  protocol::RouterOptions routerOptions;
  routerOptions.pageSize = cfg.pageSize;
  routerOptions.clientRequestTimeout = cfg.server.clientRequestTimeout;
  protocol::McpRouter router(catalog, {cfg.name, MCPHOST_VERSION, ""}, routerOptions);
  router.setAccessGuard(security->guard);
  auto dataGuards = buildDataGuards(cfg);
  if (!dataGuards) {
    log::error("startup", "data protection or audit cannot start", {{"error", dataGuards.error()}});
    std::cerr << "mcphost: " << dataGuards.error() << "\n";
    return 2;
  }
  if (dataGuards->audit) log::info("startup", "audit log open", {{"directory", cfg.audit.directory}});
  router.setDataGuards(std::move(dataGuards.value()));
  protocol::ParseLimits limits{cfg.server.maxBodyBytes, cfg.server.maxJsonDepth};

  if (options.stdio) {
    log::info("startup", "serving MCP on stdio", {{"config", cfg.path}});
    transport::StdioTransport stdio(router, bus, limits, cfg.server.workerThreads);
    stdio.setIdentity(security->auth->stdioPrincipal(), security->limits, &catalog);
    return stdio.run(std::cin, std::cout);
  }

  std::string host = cfg.server.host;
  std::uint16_t port = cfg.server.port;
  if (options.listenOverride) {
    auto hp = config::parseListen(*options.listenOverride);
    if (!hp) {
      std::cerr << "mcphost: --listen: " << hp.error() << "\n";
      return 2;
    }
    host = hp->first;
    port = hp->second;
    if (host.rfind("127.", 0) != 0 && !cfg.auth.enabled && !cfg.auth.anonymousNonLoopback) {
      std::cerr << "mcphost: --listen " << *options.listenOverride
                << ": listening beyond loopback needs authentication (auth:) or auth.anonymous: true\n";
      return 2;
    }
  }
  transport::EndpointOptions endpoint;
  endpoint.path = cfg.server.endpoint;
  for (const auto& h : cfg.server.allowedHosts) endpoint.allowedHosts.push_back(h);
  endpoint.allowedOrigins = cfg.server.allowedOrigins;
  endpoint.rebindingProtection = cfg.server.dnsRebindingProtection;
  endpoint.limits = limits;
  endpoint.accessLog = cfg.accessLog;
  endpoint.resumableResponses = cfg.server.resumableResponses;
  endpoint.sessions.maxSessions = cfg.server.maxSessions;
  endpoint.sessions.idleTimeout = cfg.server.sessionIdleTimeout;
  endpoint.auth = security->auth;
  endpoint.rateLimits = security->limits;
  auto readiness = [&catalog, &set] {
    std::vector<std::string> reasons;
    const auto unavailable = catalog.unavailableConnectors();
    for (const auto& id : unavailable) {
      auto worker =
          std::find_if(set.workers.begin(), set.workers.end(), [&](const auto& w) { return w.first == id; });
      const auto invalid = set.invalid.find(id);
      auto remote =
          std::find_if(set.remotes.begin(), set.remotes.end(), [&](const auto& r) { return r.first == id; });
      const std::string why = worker != set.workers.end()    ? worker->second->status().lastError
                              : remote != set.remotes.end()  ? remote->second->status().lastError
                              : invalid != set.invalid.end() ? invalid->second
                                                             : "";
      reasons.push_back("connector '" + id + "' is unavailable" + (why.empty() ? "" : ": " + why));
    }
    for (const auto& [id, worker] : set.workers) {
      const auto s = worker->status();
      if (s.state != "ready" && std::find(unavailable.begin(), unavailable.end(), id) == unavailable.end()) {
        reasons.push_back("connector '" + id + "' is " + s.state +
                          (s.lastError.empty() ? "" : ": " + s.lastError));
      }
    }
    for (const auto& [id, remote] : set.remotes) {
      const auto s = remote->status();
      if (s.state != "ready" && std::find(unavailable.begin(), unavailable.end(), id) == unavailable.end()) {
        reasons.push_back("connector '" + id + "' is " + s.state +
                          (s.lastError.empty() ? "" : ": " + s.lastError));
      }
    }
    return reasons;
  };
  transport::StreamableHttpEndpoint mcp(endpoint, router, catalog, bus, readiness);

  transport::HttpServerOptions http;
  if (!cfg.server.tlsCertificateFile.empty()) {
    auto tls = transport::TlsContext::create({cfg.server.tlsCertificateFile, cfg.server.tlsPrivateKeyFile,
                                              cfg.server.tlsMinVersion, cfg.server.tlsClientCaFile,
                                              cfg.server.tlsClientCertRequired});
    if (!tls) {
      std::cerr << "mcphost: " << cfg.path << ": " << tls.error() << "\n";
      return 2;
    }
    http.tls = std::move(tls.value());
  }
  http.host = host;
  http.port = port;
  http.maxBodyBytes = cfg.server.maxBodyBytes;
  http.workerThreads = cfg.server.workerThreads;
  http.requestReadTimeout = cfg.server.requestReadTimeout;
  http.idleTimeout = cfg.server.idleConnectionTimeout;
  http.maxConnections = cfg.server.maxConnections;
  http.isControl = [&mcp](const transport::HttpRequest& request) { return mcp.isControlRequest(request); };
  transport::HttpServer server(http, [&mcp](transport::HttpRequest&& request,
                                            const std::shared_ptr<transport::ResponseChannel>& channel) {
    mcp.handle(std::move(request), channel);
  });
  auto bound = server.bind();
  const std::string scheme = http.tls ? "https" : "http";
  if (!bound) {
    std::cerr << "mcphost: " << bound.error() << "\n";
    return 1;
  }
  if (host.rfind("127.", 0) != 0 && host != "localhost" && !security->auth->enabled()) {
    log::warn("startup", "listening beyond loopback without authentication (auth.anonymous is true)",
              {{"host", host}});
  }
  const std::string url = scheme + "://" + host + ":" + std::to_string(*bound) + cfg.server.endpoint;
  log::info("startup", "mcphost is serving MCP",
            {{"url", url}, {"config", cfg.path}, {"version", MCPHOST_VERSION}});
  if (::isatty(STDERR_FILENO) != 0) {
    std::cerr << "\nmcphost is ready. Paste this URL into your MCP client (Streamable HTTP):\n\n    " << url
              << "\n\n";
  }
  // On SIGTERM: end sessions (waiting handlers get an error), then let requests in flight finish.
  server.onDrain(
      [&mcp] {
        log::info("shutdown", "stopping: no new connections; letting requests in flight finish");
        mcp.beginShutdown();
      },
      std::chrono::seconds(10));
  gServer = &server;
  std::signal(SIGTERM, onStopSignal);
  std::signal(SIGINT, onStopSignal);
  server.run();
  gServer = nullptr;
  mcp.shutdown();
  log::info("shutdown", "stopped: requests drained and sessions closed");
  return 0;
}

}  // namespace mcphost::app
