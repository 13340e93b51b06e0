// mcphost audit verify|export: check the audit log's hash chain and export it for compliance.
#pragma once

#include <string>
#include <vector>

namespace mcphost::app {

// args without the leading "audit". Exit codes: 0 ok, 1 the log failed verification, 2 usage
// or I/O error.
int runAuditCommand(const std::vector<std::string>& args);

extern const char* const kAuditUsage;

}  // namespace mcphost::app
