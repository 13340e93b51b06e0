// Reads a secret from where the configuration says it lives (environment or file).
#pragma once

#include <string>

#include "common/expected.hpp"
#include "config/config.hpp"

namespace mcphost::config {

// The error names the secret and where it was looked for, never a value.
Expected<std::string, std::string> readSecret(const std::string& name, const SecretSource& source);
[[nodiscard]] inline bool isSet(const SecretSource& source) {
  return !source.env.empty() || !source.file.empty();
}

}  // namespace mcphost::config
