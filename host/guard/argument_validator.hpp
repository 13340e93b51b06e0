// Checks tools/call arguments against the tool's inputSchema in the host, before any connector
// sees them: a connector (often vendor code) then never has to defend against arguments its
// own schema already rules out. An invalid call becomes a tool error (isError: true) that names
// the JSON pointer and the rule, so the model can correct the call; it is not a protocol error.
//
// Compiled schemas are cached per tool and recompiled when the connector's schema changes
// (list_changed). A schema the host cannot compile (a remote $ref, a broken pattern) refuses
// the call: an unchecked call is what the check exists to prevent.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/json_schema.hpp"
#include "protocol/json_rpc.hpp"

namespace mcphost::guard {

class ArgumentValidator {
 public:
  static constexpr std::size_t kMaxCachedSchemas = 4096;

  // nullopt when the arguments are valid; else the tool-error result to return to the client.
  [[nodiscard]] std::optional<protocol::Json> check(const std::string& toolName,
                                                    const protocol::Json& inputSchema,
                                                    const protocol::Json& arguments);

  // The tool-error result shape the host uses for refusals the model can act on.
  static protocol::Json toolError(std::string text, protocol::Json details = nullptr);

 private:
  struct Entry {
    std::string schemaText;  // the schema it was compiled from (a change recompiles)
    std::shared_ptr<const JsonSchema> schema;
    std::string compileError;
  };
  std::shared_ptr<const Entry> entryFor(const std::string& toolName, const protocol::Json& inputSchema);

  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Entry>> cache_;
};

}  // namespace mcphost::guard
