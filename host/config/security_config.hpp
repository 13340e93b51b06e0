// Reads the security sections of the configuration: auth, policy, rate_limits, state_dir.
#pragma once

#include "config/yaml_reader.hpp"

namespace mcphost::config::detail {

void readSecurity(Reader& r, const YAML::Node& root, Config& cfg);
// A secret reference: {env: VAR} or {file: PATH}; never the value itself.
// A relative path in the configuration is relative to the configuration file.
std::string besideConfig(const std::string& configPath, const std::string& path);
void readSecretSource(Reader& r, const YAML::Node& node, const std::string& path, SecretSource& out);

}  // namespace mcphost::config::detail
