// Reads the data-protection sections of the configuration: guard (input checks),
// data_protection (DLP detectors and rules) and audit.
#pragma once

#include "config/yaml_reader.hpp"

namespace mcphost::config::detail {

void readDataProtection(Reader& r, const YAML::Node& root, Config& cfg);
// "64MiB", "500MB", "1GiB", "4096" (bytes).
Expected<std::uint64_t, std::string> parseByteSize(const std::string& value);

}  // namespace mcphost::config::detail
