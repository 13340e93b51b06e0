// Assembles the host from a validated configuration: connectors → catalog → router → transport.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace mcphost::app {

struct ServeOptions {
  config::Config config;
  std::optional<std::string> listenOverride;
  bool stdio = false;
};

// Everything check-config can know without serving: the configuration, plus the catalog it
// produces (name collisions between connector instances are only visible there).
Expected<bool, std::string> checkDeployment(const config::Config& config);

// Runs until SIGTERM/SIGINT (HTTP) or end of input (stdio). Returns the exit code.
int serve(ServeOptions options);

}  // namespace mcphost::app
