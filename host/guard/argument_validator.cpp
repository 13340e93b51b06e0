#include "guard/argument_validator.hpp"

#include "observe/log.hpp"

namespace mcphost::guard {

protocol::Json ArgumentValidator::toolError(std::string text, protocol::Json details) {
  protocol::Json result = {
      {"content", protocol::Json::array({{{"type", "text"}, {"text", std::move(text)}}})}, {"isError", true}};
  if (!details.is_null()) result["_meta"] = {{"io.mcphost/refusal", std::move(details)}};
  return result;
}

std::shared_ptr<const ArgumentValidator::Entry> ArgumentValidator::entryFor(
    const std::string& toolName, const protocol::Json& inputSchema) {
  std::string text = inputSchema.dump();
  {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(toolName);
    if (it != cache_.end() && it->second->schemaText == text) return it->second;
  }
  // Compile outside the lock: a large schema must not stall every other call.
  auto entry = std::make_shared<Entry>();
  auto compiled = JsonSchema::compile(inputSchema, SchemaOptions{/*strict=*/false});
  if (compiled) {
    entry->schema = std::make_shared<const JsonSchema>(std::move(compiled.value()));
  } else {
    entry->compileError = compiled.error();
    log::warn("guard", "a tool's inputSchema cannot be compiled; calls to it are refused",
              {{"tool", toolName}, {"error", compiled.error()}});
  }
  entry->schemaText = std::move(text);
  std::lock_guard lock(mutex_);
  if (cache_.size() >= kMaxCachedSchemas) cache_.clear();  // tools come and go; never grow unbounded
  cache_[toolName] = entry;
  return entry;
}

std::optional<protocol::Json> ArgumentValidator::check(const std::string& toolName,
                                                       const protocol::Json& inputSchema,
                                                       const protocol::Json& arguments) {
  // MCP requires an object schema; a tool without one takes whatever it gets (legacy servers).
  if (!inputSchema.is_object()) return std::nullopt;
  const auto entry = entryFor(toolName, inputSchema);
  if (!entry->schema) {
    return toolError(
        "The call was refused: the host cannot check arguments against the inputSchema of tool '" + toolName +
            "' (" + entry->compileError + "). Ask the connector's owner to fix the schema.",
        {{"reason", "invalid_input_schema"}});
  }
  const auto violations = entry->schema->validate(arguments);
  if (violations.empty()) return std::nullopt;
  std::string text = "Invalid arguments for tool '" + toolName + "':";
  protocol::Json details = protocol::Json::array();
  for (const auto& v : violations) {
    text += "\n- " + (v.path.empty() ? std::string("(arguments)") : v.path) + ": " + v.message;
    details.push_back({{"path", v.path}, {"message", v.message}});
  }
  text += "\nFix the arguments to match the tool's inputSchema and call again.";
  return toolError(std::move(text), {{"reason", "invalid_arguments"}, {"violations", std::move(details)}});
}

}  // namespace mcphost::guard
