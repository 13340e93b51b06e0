// Structured logging: one JSON object per line on stderr (stdout belongs to the stdio transport).
// Callers pass fields as JSON; secrets never go into fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace mcphost::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void setLevel(Level level);
bool parseLevel(std::string_view name, Level& out);
bool enabled(Level level);
void write(Level level, std::string_view component, std::string_view message, const nlohmann::json& fields);

inline void debug(std::string_view c, std::string_view m,
                  const nlohmann::json& f = nlohmann::json::object()) {
  if (enabled(Level::kDebug)) write(Level::kDebug, c, m, f);
}
inline void info(std::string_view c, std::string_view m, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kInfo, c, m, f);
}
inline void warn(std::string_view c, std::string_view m, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kWarn, c, m, f);
}
inline void error(std::string_view c, std::string_view m,
                  const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kError, c, m, f);
}

}  // namespace mcphost::log
