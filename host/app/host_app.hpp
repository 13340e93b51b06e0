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

// Runs until SIGTERM/SIGINT (HTTP) or end of input (stdio). Returns the exit code.
int serve(ServeOptions options);

}  // namespace mcphost::app
