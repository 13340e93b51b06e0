// Builds the data-protection stages from the configuration: argument validation, the DLP
// engine (always present: the audit log's redacted argument copies need its detectors even
// without masking rules) and the audit log with its sinks.
#pragma once

#include <string>

#include "common/expected.hpp"
#include "config/config.hpp"
#include "protocol/mcp_router.hpp"

namespace mcphost::app {

Expected<protocol::DataGuards, std::string> buildDataGuards(const config::Config& config);
// The audit HMAC key: from audit.key, else <state_dir>/audit.key, created (0600) when `create`.
Expected<std::string, std::string> loadAuditKey(const config::Config& config, bool create);

}  // namespace mcphost::app
