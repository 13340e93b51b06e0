// Operator commands beside `serve`: API key management and policy explanation.
#pragma once

#include <string>
#include <vector>

namespace mcphost::app {

// mcphost keys create|list|revoke|rotate ... (args without the leading "keys").
int runKeysCommand(const std::vector<std::string>& args);
// mcphost policy explain|check ... (args without the leading "policy").
int runPolicyCommand(const std::vector<std::string>& args);

extern const char* const kAdminUsage;

}  // namespace mcphost::app
