// mcphost command line: serve, check-config, keys, policy, audit, sandbox-check, version.
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "app/admin_commands.hpp"
#include "app/audit_commands.hpp"
#include "app/connector_factory.hpp"
#include "app/host_app.hpp"
#include "config/config.hpp"
#include "sandbox/sandbox.hpp"

#ifndef MCPHOST_VERSION
#define MCPHOST_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage = R"(usage:
  mcphost serve --config FILE [--listen HOST:PORT] [--stdio]
      Serve MCP over Streamable HTTP (default) or stdio (--stdio: protocol on stdout, logs on stderr).
  mcphost check-config FILE
      Validate a configuration file and exit (0 valid, 2 invalid).
  mcphost sandbox-check
      Apply the connector sandbox to a throw-away child process, try what it must prevent, and
      print what this machine enforces (seccomp, Landlock, network namespace, limits, uid).
  mcphost version
      Print the version.
)";

int usageError(const std::string& message) {
  std::cerr << "mcphost: " << message << "\n\n"
            << kUsage << mcphost::app::kAdminUsage << mcphost::app::kAuditUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage << mcphost::app::kAdminUsage << mcphost::app::kAuditUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "keys") return mcphost::app::runKeysCommand({args.begin() + 1, args.end()});
  if (args[0] == "policy") return mcphost::app::runPolicyCommand({args.begin() + 1, args.end()});
  if (args[0] == "audit") return mcphost::app::runAuditCommand({args.begin() + 1, args.end()});
  const std::string command = args[0];
  if (command == "version" || command == "--version") {
    std::cout << "mcphost " << MCPHOST_VERSION << "\n";
    return 0;
  }
  if (command == "sandbox-check") {
    if (args.size() != 1) return usageError("sandbox-check takes no arguments");
    // The policy a connector gets by default: its library folder read-only, no network, no
    // processes, bounded memory and files.
    mcphost::sandbox::Policy policy;
    policy.connectorId = "sandbox-check";
    policy.readOnlyPaths = mcphost::sandbox::defaultReadOnlyPaths();
    policy.readOnlyPaths.push_back(mcphost::app::defaultConnectorPath());
    policy.readWritePaths = mcphost::sandbox::defaultReadWritePaths();
    policy.networkNone = true;
#ifndef MCPHOST_SANITIZE  // sanitizer runtimes reserve terabytes of address space
    policy.addressSpaceBytes = std::uint64_t{4} << 30;
#endif
    policy.maxOpenFiles = 64;
    policy.memoryBytes = std::uint64_t{256} << 20;
    policy.pidsMax = 64;
    if (::geteuid() == 0) policy.runAsUid = 65534;
    policy.expectedParent = ::getpid();
    const auto report = mcphost::sandbox::probe(policy);
    std::cout << mcphost::sandbox::describe(report);
    return report.ok ? 0 : 1;
  }
  if (command == "check-config") {
    if (args.size() != 2) return usageError("check-config takes exactly one FILE");
    auto cfg = mcphost::config::loadConfig(args[1]);
    if (!cfg) {
      std::cerr << cfg.error() << "\n";
      return 2;
    }
    if (auto deployment = mcphost::app::checkDeployment(*cfg); !deployment) {
      std::cerr << deployment.error() << "\n";
      return 2;
    }
    std::cout << args[1] << ": OK (" << cfg->connectors.size() << " connector instance(s))\n";
    return 0;
  }
  if (command == "serve") {
    std::optional<std::string> configPath;
    mcphost::app::ServeOptions options;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" && i + 1 < args.size()) {
        configPath = args[++i];
      } else if (args[i] == "--listen" && i + 1 < args.size()) {
        options.listenOverride = args[++i];
      } else if (args[i] == "--stdio") {
        options.stdio = true;
      } else {
        return usageError("unknown or incomplete option '" + args[i] + "'");
      }
    }
    if (!configPath) return usageError("serve needs --config FILE");
    auto cfg = mcphost::config::loadConfig(*configPath);
    if (!cfg) {
      std::cerr << "mcphost: invalid configuration: " << cfg.error() << "\n";
      return 2;
    }
    options.config = std::move(cfg.value());
    return mcphost::app::serve(std::move(options));
  }
  return usageError("unknown command '" + command + "'");
}
